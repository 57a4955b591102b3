"""``kobako system check``: verify the store from the bytes up, and optionally repair what can be repaired.

Checks: every blob hashes to its name; every image record's manifest, config and layers exist, parse, and
have the sizes their descriptors claim, and the config digest is the image ID; every committed snapshot's
parent exists and is committed, and a snapshot made by unpacking is keyed by the chain ID of its parent and
diff ID. Leftovers of interrupted work (ingests and unpack snapshots of dead processes, directories no
snapshot owns) are not problems: they are removed and reported as notes.

``repair`` deletes corrupt blobs, image records whose content is broken, and snapshots with broken chains.
"""

from __future__ import annotations

import hashlib
import os
from collections import namedtuple

from kobako.errors import KobakoError
from kobako.images.unpack import DIFF_ID_LABEL

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from kobako.images.service import ImageService

#: ``problems`` (strings; non-empty means the store is damaged), ``repaired`` and ``notes`` (strings).
CheckResult = namedtuple("CheckResult", "problems repaired notes")


def check(service: ImageService, *, repair: bool = False) -> CheckResult:
    from kobako.images.archive import clean_leftover_ingests
    from kobako.metadata.gc import remove_dead_unpacks

    problems: list[str] = []
    repaired: list[str] = []
    notes: list[str] = []
    content, sn = service.content, service.snapshotter()

    for ref in clean_leftover_ingests(content):
        notes.append(f"removed interrupted ingest {ref}")
    for key in remove_dead_unpacks(sn):
        notes.append(f"removed interrupted unpack snapshot {key}")
    for name in sn.cleanup():
        notes.append(f"removed orphaned snapshot directory {name}")

    for p in content.verify_all():
        problems.append(f"blob {p.digest or p.path}: {p.reason}")
        if repair and p.digest is not None:
            content.delete(p.digest)
            repaired.append(f"deleted corrupt blob {p.digest}")

    bad_images = _check_images(service, problems)
    if repair:
        for name in bad_images:
            service.store.untag(name)
            repaired.append(f"removed broken image record {name}")

    bad_snaps = _check_snapshots(sn, problems)
    if repair:
        for key in bad_snaps:
            try:
                sn.remove(key)
                repaired.append(f"removed snapshot {key}")
            except KobakoError as exc:
                problems.append(f"snapshot {key}: could not remove: {exc}")
    return CheckResult(problems, repaired, notes)


def _blob_ok(service: ImageService, desc: dict, what: str, problems: list[str]) -> bool:
    try:
        size = os.stat(service.blob_path(desc["digest"])).st_size
    except FileNotFoundError:
        problems.append(f"{what}: blob {desc['digest']} is missing")
        return False
    if size != desc["size"]:
        problems.append(f"{what}: blob {desc['digest']} has {size} bytes, its descriptor says {desc['size']}")
        return False
    return True


def _check_images(service: ImageService, problems: list[str]) -> list[str]:
    """Problems of every image record; return the names of the broken records."""
    bad = []
    for rec in service.store.list():
        what = f"image {rec.name}"
        before = len(problems)
        target = {"mediaType": rec.media_type, "digest": rec.digest, "size": rec.size}
        if not _blob_ok(service, target, what, problems):
            bad.append(rec.name)
            continue
        try:
            image = service.image_from_records([rec])
        except KobakoError as exc:
            problems.append(f"{what}: {exc}")
            bad.append(rec.name)
            continue
        if image.manifest["config"]["digest"] != rec.image_id:
            problems.append(
                f"{what}: config {image.manifest['config']['digest']} is not the image ID {rec.image_id}"
            )
        _blob_ok(service, image.manifest["config"], f"{what} config", problems)
        for i, layer in enumerate(image.layers):
            _blob_ok(service, layer, f"{what} layer {i}", problems)
        if len(image.layers) != len(image.diff_ids):
            problems.append(f"{what}: {len(image.layers)} layers but {len(image.diff_ids)} diff IDs")
        if len(problems) != before:
            bad.append(rec.name)
    return bad


def _check_snapshots(sn: object, problems: list[str]) -> list[str]:
    """Problems of the snapshot chains; return the keys of bad snapshots, children first."""
    from kobako.snapshots.base import Kind

    infos = {i.key: i for i in sn.walk()}  # type: ignore[attr-defined]
    bad = []
    for key, info in infos.items():
        parent = info.parent
        if parent:
            p = infos.get(parent)
            if p is None:
                problems.append(f"snapshot {key}: parent {parent} does not exist")
                bad.append(key)
                continue
            if p.kind != Kind.COMMITTED:
                problems.append(f"snapshot {key}: parent {parent} is {p.kind.value}, not committed")
                bad.append(key)
                continue
        diff_id = info.labels.get(DIFF_ID_LABEL)
        if info.kind == Kind.COMMITTED and diff_id:
            want = (
                diff_id
                if not parent
                else "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()
            )
            if key != want:
                problems.append(
                    f"snapshot {key}: not the chain ID of parent {parent or '(none)'} and layer {diff_id}"
                )
                bad.append(key)

    def depth(k: str) -> int:
        n = 0
        while k in infos and infos[k].parent:
            k, n = infos[k].parent, n + 1
        return n

    return sorted(set(bad), key=depth, reverse=True)  # children first, so removal can proceed

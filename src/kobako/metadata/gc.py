"""Garbage collection: mark from the roots, sweep what no root reaches.

Roots: every image record's target; every active or view snapshot (container root filesystems are active
snapshots, and so is an unpack in progress). Marking walks index → manifests → config and layers, and turns
each image's diff IDs into chain IDs, keeping those committed snapshots and their ancestors. The sweep removes
unmarked committed snapshots (children first) and unmarked blobs, plus ingests idle for a day and unpack
snapshots whose process died.

If a document cannot be read (missing or corrupt manifest), the children it names are unknown, so nothing is
swept: ``kobako system check`` reports the damage. The caller holds the GC lock exclusively
(:class:`kobako.metadata.lock.GCLock`), which keeps imports between their first commit and their image record.
"""

from __future__ import annotations

from collections import namedtuple

from kobako.errors import KobakoError, NotFound
from kobako.metadata.lock import UNPACK_LABEL, owner_alive
from kobako.oci import image_spec as spec

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from kobako.content.local import LocalStore
    from kobako.metadata.db import MetadataDB
    from kobako.snapshots.base import Snapshotter

#: ``blobs`` and ``snapshots`` removed (lists of digests / keys), ``bytes`` freed by the blobs, ``ingests``
#: and ``unpacks`` (stale leftovers removed), ``errors`` (why the sweep was skipped, if it was).
GCResult = namedtuple("GCResult", "blobs bytes snapshots ingests unpacks errors")

INGEST_MAX_IDLE = 24 * 3600.0


def remove_dead_unpacks(sn: Snapshotter) -> list[str]:
    """Remove active unpack snapshots whose process is gone (a killed load); return their keys."""
    from kobako.snapshots.base import Kind

    removed = []
    for info in list(sn.walk()):
        token = info.labels.get(UNPACK_LABEL)
        if info.kind == Kind.ACTIVE and token and not owner_alive(token):
            try:
                sn.remove(info.key)
                removed.append(info.key)
            except NotFound:
                pass
    return removed


def _read(content: LocalStore, digest: str, kind: str) -> dict:
    return spec.parse(content.read_bytes(digest, limit=spec.MAX_DOCUMENT_SIZE), kind, f"{kind} {digest}")


def mark_image(content: LocalStore, target: dict, blobs: set[str], chains: set[str]) -> None:
    """Add every blob and chain ID reachable from ``target`` (raises if a document is unreadable)."""
    digest, media_type = target["digest"], target["mediaType"]
    blobs.add(digest)
    if media_type in spec.INDEX_TYPES:
        for child in _read(content, digest, "index")["manifests"]:
            # an index may list platforms that were never fetched: only present children are walked
            if child["mediaType"] in spec.MANIFEST_TYPES | spec.INDEX_TYPES and _has(
                content, child["digest"]
            ):
                mark_image(content, child, blobs, chains)
        return
    if media_type not in spec.MANIFEST_TYPES:
        return
    manifest = spec.validate_manifest(_read_raw(content, digest), f"manifest {digest}", image=False)
    blobs.add(manifest["config"]["digest"])
    blobs.update(layer["digest"] for layer in manifest["layers"])
    if manifest["config"]["mediaType"] in spec.CONFIG_TYPES:
        config = _read(content, manifest["config"]["digest"], "config")
        chains.update(spec.chain_ids(config["rootfs"]["diff_ids"]))


def _read_raw(content: LocalStore, digest: str) -> object:
    from kobako.oci import jsoncodec

    return jsoncodec.loads(content.read_bytes(digest, limit=spec.MAX_DOCUMENT_SIZE), f"manifest {digest}")


def _has(content: LocalStore, digest: str) -> bool:
    try:
        content.info(digest)
    except NotFound:
        return False
    return True


def collect(content: LocalStore, sn: Snapshotter, db: MetadataDB, *, dry_run: bool = False) -> GCResult:
    from kobako.snapshots.base import Kind

    unpacks = [] if dry_run else remove_dead_unpacks(sn)
    ingests = [] if dry_run else content.cleanup_stale(older_than=INGEST_MAX_IDLE)
    with db.transaction() as tx:
        records = tx.list()
    blobs: set[str] = set()
    chains: set[str] = set()
    errors: list[str] = []
    for rec in records:
        try:
            mark_image(content, {"mediaType": rec.media_type, "digest": rec.digest}, blobs, chains)
        except KobakoError as exc:
            errors.append(f"image {rec.name}: {exc}")
    if errors:
        return GCResult([], 0, [], ingests, unpacks, errors)

    infos = {i.key: i for i in sn.walk()}
    keep: set[str] = set()
    roots = [k for k, i in infos.items() if i.kind != Kind.COMMITTED] + [c for c in chains if c in infos]
    for key in roots:
        while key and key not in keep:
            keep.add(key)
            key = infos[key].parent if key in infos else ""

    def depth(key: str) -> int:
        n = 0
        while key in infos and infos[key].parent:
            key, n = infos[key].parent, n + 1
        return n

    doomed = sorted((k for k in infos if k not in keep), key=depth, reverse=True)
    removed_snaps = []
    for key in doomed:
        if dry_run:
            removed_snaps.append(key)
            continue
        try:
            sn.remove(key)
            removed_snaps.append(key)
        except KobakoError:  # gained a child since the walk (a container prepared on it): keep it
            continue
    if not dry_run:
        sn.cleanup()

    removed_blobs, freed = [], 0
    for info in list(content.list()):
        d = str(info.digest)
        if d in blobs:
            continue
        if not dry_run:
            try:
                content.delete(d)
            except NotFound:
                continue
        removed_blobs.append(d)
        freed += info.size
    return GCResult(removed_blobs, freed, removed_snaps, ingests, unpacks, [])

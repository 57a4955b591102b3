"""``kobako registry gc``: remove blobs no manifest of any repository needs.

Mark: every manifest revision of every repository, the config and layers of image manifests, the child
manifests of indexes (a child's own blobs are marked through its revision). Sweep: unmarked blobs, and the
repository links pointing at them, unless younger than ``grace`` seconds: a push uploads its blobs before its
manifest, so a blob that no manifest names yet may be one a client is about to use. Upload sessions idle for
longer than a day are dropped too. A manifest that cannot be read stops the sweep (its blobs are unknown).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import namedtuple

from kobako.errors import InvalidArgument, KobakoError, NotFound
from kobako.oci.digest import Digest
from kobako.oci.jsoncodec import loads
from kobako.registry.server.storage import UPLOAD_PREFIX, Storage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

#: ``blobs`` removed (digests), ``bytes`` freed, ``links`` removed, ``uploads`` dropped, ``errors``.
RegistryGCResult = namedtuple("RegistryGCResult", "blobs bytes links uploads errors")

DEFAULT_GRACE = 600.0
UPLOAD_MAX_IDLE = 24 * 3600.0


def _referenced(storage: Storage, d: Digest) -> list[Digest]:
    raw = storage.read_manifest(d, limit=8 << 20)
    doc = loads(raw, f"manifest {d}")
    if not isinstance(doc, dict):
        raise InvalidArgument(f"manifest {d}: not an object")
    out = []
    if isinstance(doc.get("manifests"), list):
        out += [Digest.parse(m["digest"]) for m in doc["manifests"]]
    if isinstance(doc.get("config"), dict):
        out.append(Digest.parse(doc["config"]["digest"]))
    if isinstance(doc.get("layers"), list):
        out += [Digest.parse(x["digest"]) for x in doc["layers"]]
    return out


def mark(storage: Storage) -> tuple[set[Digest], list[str]]:
    keep: set[Digest] = set()
    errors: list[str] = []
    for name in storage.repositories():
        for d in storage.manifest_digests(name):
            keep.add(d)
            try:
                keep.update(_referenced(storage, d))
            except (KobakoError, KeyError, TypeError) as exc:
                errors.append(f"{name}@{d}: {exc}")
    return keep, errors


def collect(root: str, *, grace: float = DEFAULT_GRACE, dry_run: bool = False) -> RegistryGCResult:
    storage = Storage(root)
    now = time.time()
    uploads = [] if dry_run else _drop_idle_uploads(storage, now)
    if not dry_run:  # ingests of crashed manifest writes and of sessions dropped above
        storage.content.cleanup_stale(older_than=UPLOAD_MAX_IDLE)
    keep, errors = mark(storage)
    if errors:
        return RegistryGCResult([], 0, [], uploads, errors)
    all_links = list(_links(storage))
    fresh = {d for _name, d, path in all_links if now - _mtime(path) < grace}
    removed, freed, links = [], 0, []
    for info in list(storage.content.list()):
        if info.digest in keep or info.digest in fresh or now - info.created_at < grace:
            continue
        if not dry_run:
            try:
                storage.content.delete(info.digest)
            except NotFound:
                continue
        removed.append(str(info.digest))
        freed += info.size
    doomed = {Digest.parse(d) for d in removed}
    for name, d, path in all_links:
        if d in doomed or (not dry_run and not storage.blob_exists(d)):
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            links.append(f"{name}@{d}")
    return RegistryGCResult(removed, freed, links, uploads, [])


def _links(storage: Storage) -> Iterator[tuple[str, Digest, str]]:
    """(repository, digest, link path) of every blob link."""
    for name in storage.repositories():
        base = os.path.join(storage.repos_dir, name, "_layers")
        for alg in _listdir(base):
            for encoded in _listdir(os.path.join(base, alg)):
                try:
                    yield name, Digest(alg, encoded), os.path.join(base, alg, encoded)
                except InvalidArgument:
                    continue


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def _drop_idle_uploads(storage: Storage, now: float) -> list[str]:
    dropped = []
    for upload_id in storage.upload_ids():
        try:
            status = storage.content.status(UPLOAD_PREFIX + upload_id)
            last = status.updated_at
        except NotFound:
            last = storage.upload_session(upload_id).get("started", 0.0)
        if now - float(last) > UPLOAD_MAX_IDLE:
            storage.end_upload(upload_id)
            dropped.append(upload_id)
    return dropped


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []

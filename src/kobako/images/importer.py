"""``kobako import``: one root-filesystem tar (plain, gzip or zstd) → a one-layer image, like docker import.

The tar is read once: each chunk goes into a content-store ingest (the layer blob, stored as given) and into
the layer applier, which unpacks it into a new snapshot and computes its diff ID. Then, holding the GC lock
shared, the blob and the snapshot are committed, the config and manifest written and the name recorded.
A failure removes the snapshot and the ingest; a killed import leaves an ingest and an unpack snapshot whose
owner is dead, which the next load/import, GC or ``system check`` removes.
"""

from __future__ import annotations

import os
import time

from kobako.errors import AlreadyExists
from kobako.images.archive import put_bytes
from kobako.images.changes import apply_changes
from kobako.images.unpack import apply_into_new, commit_layer
from kobako.oci import image_spec as spec
from kobako.oci import jsoncodec
from kobako.oci.digest import BUFSIZE

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from typing import IO

    from kobako.content.ingest import LocalWriter
    from kobako.images.service import ImageService


def rfc3339(t: float | None = None) -> str:
    """UTC time as RFC 3339 with nanoseconds, as Go writes image timestamps."""
    ns = time.time_ns() if t is None else int(t * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


class _Tee:
    """A reader that copies everything read into an ingest."""

    def __init__(self, src: IO[bytes], writer: LocalWriter) -> None:
        self.src = src
        self.writer = writer

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n if n and n > 0 else BUFSIZE)
        if data:
            self.writer.write(data)
        return data

    def drain(self) -> None:
        while self.read(BUFSIZE):
            pass


def import_rootfs(service: ImageService, stream: IO[bytes], name: str | None = None,
                  changes: list[str] | None = None, message: str = "", source: str = "-") -> str:  # fmt: skip
    """Make an image from the root filesystem tar in ``stream``; return its ID."""
    from kobako.errors import InvalidArgument
    from kobako.images.archive import clean_leftover_ingests
    from kobako.metadata.lock import GCLock
    from kobako.oci.reference import normalize

    if name:
        name = normalize(name)
        if "@" in name:
            raise InvalidArgument(f"cannot import to {name!r}: a digest is not a tag")
    config_section = apply_changes({}, changes or [])  # bad changes fail before any work
    content = service.content
    clean_leftover_ingests(content)
    sn = service.snapshotter()
    ref = f"import-{os.getpid()}-{time.monotonic_ns()}"
    writer = content.writer(ref)
    key = ""
    try:
        tee = _Tee(stream, writer)
        key, result = apply_into_new(sn, "", tee)
        tee.drain()
        diff_id = str(result.diff_id)
        now = rfc3339()
        config = {
            "created": now,
            "architecture": spec.host_platform()["architecture"],
            "os": "linux",
            "config": config_section,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [
                {
                    "created": now,
                    "created_by": "kobako import " + source,
                    "comment": message or f"Imported from {source}",
                }
            ],
        }
        config_bytes = jsoncodec.dumps(config).encode()
        with GCLock(service.root):
            size = writer.offset
            try:
                blob = str(writer.commit(size, writer.digest()))
            except AlreadyExists:
                blob = str(writer.digest())
            writer = None
            commit_layer(sn, key, diff_id, diff_id)
            key = ""
            config_digest = str(put_bytes(content, config_bytes, ref + "-config"))
            layer = spec.descriptor(spec.LAYER_MEDIA_TYPE[result.compression], blob, size)
            manifest = {"schemaVersion": 2, "mediaType": spec.OCI_MANIFEST,
                        "config": spec.descriptor(spec.OCI_CONFIG, config_digest, len(config_bytes)),
                        "layers": [layer]}  # fmt: skip
            manifest_bytes = jsoncodec.dumps(manifest).encode()
            digest = put_bytes(content, manifest_bytes, ref + "-manifest")
            target = spec.descriptor(spec.OCI_MANIFEST, digest, len(manifest_bytes))
            if name:
                service.store.set(name, target, config_digest)
            else:
                service.store.add_dangling(target, config_digest)
        return config_digest
    finally:
        if writer is not None:
            writer.close()
            try:
                content.abort(ref)
            except Exception:  # left for clean_leftover_ingests; never hide the real error
                pass
        if key:
            try:
                sn.remove(key)
            except Exception:
                pass

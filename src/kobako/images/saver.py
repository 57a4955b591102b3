"""``kobako save``: images to a docker-archive (default, like docker) or an oci-archive, deterministically.

docker-archive is the layout ``podman save --format docker-archive`` writes and every loader reads:
``<config hex>.json``, ``<diff ID hex>.tar`` (uncompressed layers: a compressed blob is decompressed through
a temporary file so its size is known and its diff ID checked), ``manifest.json`` (Config, RepoTags, Layers)
and ``repositories``. oci-archive is an OCI image layout: ``oci-layout``, ``index.json`` (one entry per name,
``org.opencontainers.image.ref.name`` holding the full reference, as podman writes it) and
``blobs/<alg>/<hex>`` in digest order. Every member has mode 0644/0755, owner 0:0 and mtime 0, so the same
images always give the same bytes.
"""

from __future__ import annotations

import os
import tempfile

from kobako.archive import tarformat as tf
from kobako.errors import InvalidArgument
from kobako.oci import image_spec as spec
from kobako.oci import jsoncodec
from kobako.oci.digest import BUFSIZE
from kobako.oci.reference import parse_normalized

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from typing import IO

    from kobako.images.service import Image, ImageService

FORMATS = ("docker-archive", "oci-archive")


class TarWriter:
    """A deterministic tar stream: ustar headers, fixed owner, modes and times."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self._dirs: set[str] = set()

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self._dirs:
                self._dirs.add(d)
                self.out.write(tf.encode_header(tf.Entry((d + "/").encode(), tf.DIR, 0o755)))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._parents(name)
        self.out.write(tf.encode_header(tf.Entry(name.encode(), tf.REG, 0o644, size=len(data))))
        self.out.write(data)
        self.out.write(bytes(-len(data) % tf.BLOCK))

    def add_stream(self, name: str, size: int, src: IO[bytes]) -> None:
        self._parents(name)
        self.out.write(tf.encode_header(tf.Entry(name.encode(), tf.REG, 0o644, size=size)))
        left = size
        while left:
            chunk = src.read(min(left, BUFSIZE))
            if not chunk:
                raise InvalidArgument(f"{name}: content shrank while it was being saved")
            self.out.write(chunk)
            left -= len(chunk)
        self.out.write(bytes(-size % tf.BLOCK))

    def close(self) -> None:
        self.out.write(bytes(2 * tf.BLOCK))


def save(service: ImageService, items: list[tuple[Image, list[str]]], out: IO[bytes],
         fmt: str = "docker-archive") -> None:  # fmt: skip
    """Write ``items`` (each an image and the names to save it under) to ``out``."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown format {fmt!r}: want one of {', '.join(FORMATS)}")
    tar = TarWriter(out)
    if fmt == "oci-archive":
        _oci(service, items, tar)
    else:
        _docker(service, items, tar)
    tar.close()


def _add_blob(service: ImageService, tar: TarWriter, name: str, digest: str, size: int) -> None:
    with open(service.blob_path(digest), "rb") as f:
        if os.fstat(f.fileno()).st_size != size:
            raise InvalidArgument(f"content {digest} does not have the {size} bytes its descriptor says")
        tar.add_stream(name, size, f)


def _oci(service: ImageService, items: list[tuple[Image, list[str]]], tar: TarWriter) -> None:
    entries, blobs = [], {}
    for image, names in items:
        manifest_raw = service.read_blob(image.manifest_digest)
        media_type = image.manifest.get("mediaType") or spec.OCI_MANIFEST
        mdesc = spec.descriptor(media_type, image.manifest_digest, len(manifest_raw))
        for name in names or [""]:
            notes = {spec.ANNOTATION_REF_NAME: name} if name else None
            entry = spec.descriptor(mdesc["mediaType"], mdesc["digest"], mdesc["size"], notes)
            if entry not in entries:
                entries.append(entry)
        blobs[image.manifest_digest] = len(manifest_raw)
        blobs[image.manifest["config"]["digest"]] = image.manifest["config"]["size"]
        for layer in image.layers:
            blobs[layer["digest"]] = layer["size"]
    tar.add_bytes("oci-layout", jsoncodec.dumps({"imageLayoutVersion": spec.OCI_LAYOUT_VERSION}).encode())
    index = {"schemaVersion": 2, "mediaType": spec.OCI_INDEX, "manifests": entries}
    tar.add_bytes("index.json", jsoncodec.dumps(index).encode())
    for digest in sorted(blobs):
        alg, _, hexpart = digest.partition(":")
        _add_blob(service, tar, f"blobs/{alg}/{hexpart}", digest, blobs[digest])


def _add_uncompressed_layer(
    service: ImageService, tar: TarWriter, name: str, layer: dict, diff_id: str
) -> None:
    if spec.layer_compression(layer["mediaType"]) == "none":
        _add_blob(service, tar, name, layer["digest"], layer["size"])
        return
    from kobako.archive.compression import DecompressedChunks

    with (
        open(service.blob_path(layer["digest"]), "rb") as src,
        tempfile.TemporaryFile(dir=service.root) as tmp,
    ):
        with DecompressedChunks(src) as chunks:
            for chunk in chunks:
                tmp.write(chunk)
            if str(chunks.diff_id) != diff_id:
                raise InvalidArgument(
                    f"layer {layer['digest']} decompresses to {chunks.diff_id}, not {diff_id}"
                )
            size = chunks.size
        tmp.seek(0)
        tar.add_stream(name, size, tmp)


def _docker(service: ImageService, items: list[tuple[Image, list[str]]], tar: TarWriter) -> None:
    manifest, repositories, written = [], {}, set()
    for image, names in items:
        layer_names = []
        for layer, diff_id in zip(image.layers, image.diff_ids, strict=True):
            name = diff_id.partition(":")[2] + ".tar"
            if name not in written:
                written.add(name)
                _add_uncompressed_layer(service, tar, name, layer, diff_id)
            layer_names.append(name)
        config_name = image.id.partition(":")[2] + ".json"
        if config_name not in written:
            written.add(config_name)
            _add_blob(
                service,
                tar,
                config_name,
                image.manifest["config"]["digest"],
                image.manifest["config"]["size"],
            )
        tags = [parse_normalized(n).familiar() for n in names]
        manifest.append({"Config": config_name, "RepoTags": tags or None, "Layers": layer_names})
        top = image.diff_ids[-1].partition(":")[2] if image.diff_ids else image.id.partition(":")[2]
        for n in names:
            ref = parse_normalized(n)
            repositories.setdefault(ref.familiar_name(), {})[ref.tag] = top
    tar.add_bytes("manifest.json", jsoncodec.dumps(manifest).encode())
    if repositories:
        tar.add_bytes("repositories", jsoncodec.dumps(repositories).encode())

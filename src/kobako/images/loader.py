"""``kobako load``: images from a docker-archive (``manifest.json`` + RepoTags) or an oci-archive (an OCI image
layout: ``index.json`` whose entries name images in their annotations), plain, gzip or zstd.

Steps: stream the archive into staging (:mod:`kobako.images.archive`), then validate every document and check
every descriptor against the staged files (digests and sizes are known by then) before anything is committed;
then, holding the GC lock shared, commit the blobs, unpack the layers (diff IDs verified) and write the image
records. A failure before the commit leaves nothing; a failure after it leaves only unreferenced blobs for GC.
"""

from __future__ import annotations

from collections import namedtuple

from kobako.errors import InvalidArgument, NotFound
from kobako.images.archive import StagedFile, Staging, clean_leftover_ingests, put_bytes, raise_nofile_limit
from kobako.oci import image_spec as spec
from kobako.oci import jsoncodec
from kobako.oci.reference import normalize

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from typing import IO

    from kobako.images.service import ImageService

#: One image read from an archive: ``image_id`` and the ``names`` it was recorded under.
Loaded = namedtuple("Loaded", "image_id names")
MAX_IMAGES = 1000


class _Plan:
    """One image to commit: its manifest (as a descriptor and, when kobako wrote it, its bytes), config and
    layer files (None where the content store already has the blob)."""

    def __init__(self, names: list[str], manifest: dict, config: dict, config_desc: dict) -> None:
        self.names = names
        self.manifest = manifest
        self.config = config
        self.config_desc = config_desc
        self.manifest_bytes: bytes | None = None
        self.manifest_file: StagedFile | None = None
        self.manifest_desc: dict = {}
        self.files: list[StagedFile | None] = []


def load(service: ImageService, stream: IO[bytes]) -> list[Loaded]:
    raise_nofile_limit()
    content = service.content
    clean_leftover_ingests(content)
    staging = Staging(content)
    try:
        staging.read(stream)
        if staging.has("manifest.json"):
            plans = _docker_plans(staging, service)
        elif staging.has("index.json"):
            plans = _oci_plans(staging, service)
        else:
            raise InvalidArgument("not an image archive: it has neither manifest.json nor index.json")
        return _commit(service, staging, plans)
    finally:
        staging.discard()


def _names(tags: object, what: str) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidArgument(f"{what}: want a list of strings")
    out = []
    for t in tags:
        name = normalize(t)
        if "@" in name:
            raise InvalidArgument(f"{what}: {t!r} is not a tag")
        out.append(name)
    return out


def _docker_plans(staging: Staging, service: ImageService) -> list[_Plan]:
    items = jsoncodec.loads(staging.document("manifest.json"), "manifest.json")
    if not isinstance(items, list) or not items or len(items) > MAX_IMAGES:
        raise InvalidArgument(f"manifest.json: want a list of 1 to {MAX_IMAGES} images")
    plans = []
    for i, item in enumerate(items):
        what = f"manifest.json[{i}]"
        if not isinstance(item, dict):
            raise InvalidArgument(f"{what}: want an object")
        cfg_path, layer_paths = item.get("Config"), item.get("Layers")
        if not isinstance(cfg_path, str):
            raise InvalidArgument(f"{what}.Config: want a file name")
        if not isinstance(layer_paths, list) or not all(isinstance(p, str) for p in layer_paths):
            raise InvalidArgument(f"{what}.Layers: want a list of file names")
        cfg_file = staging.lookup(cfg_path)
        cfg_bytes = staging.document(cfg_path)
        config = spec.parse(cfg_bytes, "config", f"{what} config {cfg_path}")
        diff_ids = config["rootfs"]["diff_ids"]
        if len(layer_paths) != len(diff_ids):
            raise InvalidArgument(
                f"{what}: {len(layer_paths)} layers but the config lists {len(diff_ids)} diff IDs"
            )
        layers, files = [], []
        for j, path in enumerate(layer_paths):
            f = staging.lookup(path)
            compression = _compression(f, service)
            if compression == "none" and str(f.digest) != diff_ids[j]:
                raise InvalidArgument(
                    f"{what}: layer {path!r} hashes to {f.digest}, but the config says {diff_ids[j]}"
                )
            layers.append(spec.descriptor(spec.LAYER_MEDIA_TYPE[compression], f.digest, f.size))  # type: ignore[arg-type]
            files.append(f)
        config_desc = spec.descriptor(spec.OCI_CONFIG, cfg_file.digest, len(cfg_bytes))  # type: ignore[arg-type]
        manifest = {
            "schemaVersion": 2,
            "mediaType": spec.OCI_MANIFEST,
            "config": config_desc,
            "layers": layers,
        }
        plan = _Plan(_names(item.get("RepoTags"), f"{what}.RepoTags"), manifest, config, config_desc)
        plan.manifest_bytes = jsoncodec.dumps(manifest).encode()
        plan.files = [cfg_file, *files]
        plans.append(plan)
    return plans


def _compression(f: StagedFile, service: ImageService) -> str:
    if not f.head and f.existing and f.digest is not None:
        with open(service.blob_path(str(f.digest)), "rb") as blob:
            f.head = blob.read(16)
    return f.compression()


def _blob(staging: Staging, service: ImageService, desc: dict, what: str) -> StagedFile | None:
    """The staged file for a descriptor (sizes checked), or None when the content store has it already."""
    alg, _, hexpart = desc["digest"].partition(":")
    path = f"blobs/{alg}/{hexpart}"
    if staging.has(path):
        f = staging.lookup(path)
        if f.size != desc["size"]:
            raise InvalidArgument(
                f"{what}: {desc['digest']} has {f.size} bytes, the descriptor says {desc['size']}"
            )
        return f
    if service.has_blob(desc["digest"]):
        return None
    raise InvalidArgument(f"{what}: the archive has no blob {desc['digest']}")


def _blob_bytes(staging: Staging, service: ImageService, desc: dict, what: str) -> bytes:
    f = _blob(staging, service, desc, what)
    data = staging.document(f.path) if f is not None else service.read_blob(desc["digest"])
    if len(data) != desc["size"]:
        raise InvalidArgument(
            f"{what}: {desc['digest']} has {len(data)} bytes, the descriptor says {desc['size']}"
        )
    return data


def _oci_names(desc: dict) -> list[str]:
    notes = desc.get("annotations") or {}
    name = notes.get(spec.ANNOTATION_CONTAINERD_NAME) or notes.get(spec.ANNOTATION_REF_NAME) or ""
    if not name or ("/" not in name and ":" not in name):
        return []  # a bare tag names no repository: the image loads untagged
    return _names([name], "index.json annotation")


def _oci_plans(staging: Staging, service: ImageService) -> list[_Plan]:
    if staging.has("oci-layout"):
        spec.parse(staging.document("oci-layout"), "layout", "oci-layout")
    index = spec.parse(staging.document("index.json"), "index", "index.json")
    plans = []
    for i, desc in enumerate(index["manifests"]):
        what = f"index.json manifests[{i}]"
        mdesc = desc
        if desc["mediaType"] in spec.INDEX_TYPES:
            nested = spec.parse(_blob_bytes(staging, service, desc, what), "index", what)
            found = spec.select_manifest(nested)
            if found is None:
                raise InvalidArgument(f"{what}: no manifest for {spec.host_platform()['architecture']}")
            mdesc = found
        elif desc["mediaType"] not in spec.MANIFEST_TYPES:
            continue  # an artifact, not an image
        raw = _blob_bytes(staging, service, mdesc, what)
        manifest = spec.parse(raw, "manifest", f"{what} manifest")
        config_desc = manifest["config"]
        config = spec.parse(_blob_bytes(staging, service, config_desc, what), "config", f"{what} config")
        diff_ids = config["rootfs"]["diff_ids"]
        if len(manifest["layers"]) != len(diff_ids):
            raise InvalidArgument(f"{what}: {len(manifest['layers'])} layers but {len(diff_ids)} diff IDs")
        plan = _Plan(_oci_names(desc), manifest, config, config_desc)
        plan.manifest_file = _blob(staging, service, mdesc, what)
        plan.manifest_desc = spec.descriptor(mdesc["mediaType"], mdesc["digest"], mdesc["size"])
        plan.files = [_blob(staging, service, config_desc, what)]
        plan.files += [_blob(staging, service, layer, f"{what} layer") for layer in manifest["layers"]]
        plans.append(plan)
    if not plans:
        raise InvalidArgument("index.json lists no image")
    return plans


def _commit(service: ImageService, staging: Staging, plans: list[_Plan]) -> list[Loaded]:
    from kobako.images.unpack import unpack
    from kobako.metadata.lock import GCLock

    loaded = []
    sn = service.snapshotter()
    with GCLock(service.root):
        for plan in plans:
            for f in plan.files:
                if f is not None:
                    staging.commit(f)
            if plan.manifest_bytes is not None:
                digest = put_bytes(service.content, plan.manifest_bytes, f"{staging.prefix}-manifest")
                plan.manifest_desc = spec.descriptor(
                    plan.manifest["mediaType"], digest, len(plan.manifest_bytes)
                )
            elif plan.manifest_file is not None:
                staging.commit(plan.manifest_file)
        for plan in plans:
            try:
                unpack(sn, service.content_root, plan.manifest["layers"], plan.config["rootfs"]["diff_ids"])
            except NotFound as exc:
                raise InvalidArgument(f"loading image: {exc}") from exc
        for plan in plans:
            image_id = plan.config_desc["digest"]
            for name in plan.names:
                service.store.set(name, plan.manifest_desc, image_id)
            if not plan.names:
                service.store.add_dangling(plan.manifest_desc, image_id)
            loaded.append(Loaded(image_id, plan.names))
    return loaded

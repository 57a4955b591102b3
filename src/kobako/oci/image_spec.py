"""OCI image-spec (and Docker schema2) documents: media types, validation, platforms, chain IDs. Pure data.

Documents stay plain dicts (they are read once and passed on); the ``validate_*`` functions check every field
kobako reads, for type, presence, digest syntax and sane sizes, and raise InvalidArgument naming the field
(``manifest: layers[2].size: ...``). Nothing here imports ``re``, ``typing`` or ``json``: it is on the
``kobako run`` path.
"""

from __future__ import annotations

import os

from kobako.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

OCI_LAYOUT_VERSION = "1.0.0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = DOCKER_LAYER + ".gzip"
DOCKER_LAYER_ZSTD = DOCKER_LAYER + ".zstd"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

MANIFEST_TYPES = frozenset((OCI_MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset((OCI_INDEX, DOCKER_MANIFEST_LIST))
CONFIG_TYPES = frozenset((OCI_CONFIG, DOCKER_CONFIG))
#: layer media type -> compression ("gzip", "zstd" or "none")
LAYER_TYPES: dict[str, str] = {
    OCI_LAYER: "none", OCI_LAYER_GZIP: "gzip", OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_ND: "none", OCI_LAYER_ND + "+gzip": "gzip", OCI_LAYER_ND + "+zstd": "zstd",
    DOCKER_LAYER: "none", DOCKER_LAYER_GZIP: "gzip", DOCKER_LAYER_ZSTD: "zstd", DOCKER_LAYER_FOREIGN: "gzip",
}  # fmt: skip
#: compression -> the OCI layer media type kobako writes
LAYER_MEDIA_TYPE = {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}

#: Largest blob a descriptor may claim (1 TiB): more is hostile, not an image.
MAX_BLOB_SIZE = 1 << 40
#: Largest manifest, index or config kobako reads into memory.
MAX_DOCUMENT_SIZE = 8 << 20
MAX_LAYERS = 500  # overlayfs cannot stack that many anyway
MAX_MANIFESTS = 10_000
_MAX_STR = 1 << 16
_DIGEST_HEX = {"sha256": 64, "sha512": 128}  # as kobako.oci.digest.ALGORITHMS
_HEX = frozenset("0123456789abcdef")

# Host platform names for Go's GOARCH values, and the variant an empty one means.
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
                 "i386": "386", "i686": "386"}  # fmt: skip
_DEFAULT_VARIANT = {"amd64": "v1", "arm64": "v8", "arm": "v7"}


def _err(what: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"{what}: {why}")


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _obj(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise _err(what, f"want an object, got {_type_name(value)}")
    return value


def _str(value: object, what: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise _err(what, f"want a string, got {_type_name(value)}")
    if not empty and not value:
        raise _err(what, "must not be empty")
    if len(value) > _MAX_STR:
        raise _err(what, f"string longer than {_MAX_STR} characters")
    return value


def _opt_str(doc: dict, key: str, what: str) -> None:
    if key in doc and doc[key] is not None:
        _str(doc[key], f"{what}.{key}")


def _str_list(value: object, what: str, *, nullable: bool = True) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, list):
        raise _err(what, f"want a list of strings, got {_type_name(value)}")
    for i, item in enumerate(value):
        _str(item, f"{what}[{i}]")


def _str_map(value: object, what: str, *, nullable: bool = True) -> None:
    if value is None and nullable:
        return
    for key, item in _obj(value, what).items():
        _str(item, f"{what}[{key!r}]")


def _set_map(value: object, what: str) -> None:
    """Docker's ``{"80/tcp": {}}`` sets (ExposedPorts, Volumes)."""
    if value is None:
        return
    for key, item in _obj(value, what).items():
        _str(key, f"{what} key", empty=False)
        _obj(item, f"{what}[{key!r}]")


def _int(value: object, what: str, low: int = 0, high: int = MAX_BLOB_SIZE) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _err(what, f"want an integer, got {_type_name(value)}")
    if value < low or value > high:
        raise _err(what, f"{value} is out of range [{low}, {high}]")
    return value


def digest_of(value: object, what: str) -> str:
    """A valid ``<algorithm>:<hex>`` digest string (the rules of :mod:`kobako.oci.digest`, checked here
    without importing hashlib: this runs on every ``kobako run``)."""
    text = _str(value, what)
    algorithm, sep, encoded = text.partition(":")
    want = _DIGEST_HEX.get(algorithm)
    if not sep or want is None:
        raise _err(what, f"invalid digest {text!r}: want sha256:<hex> or sha512:<hex>")
    if len(encoded) != want or not _HEX.issuperset(encoded):
        raise _err(what, f"invalid {algorithm} digest {text!r}: want {want} lowercase hex characters")
    return text


def _media_type(value: object, what: str) -> str:
    mt = _str(value, what, empty=False)
    kind, slash, sub = mt.partition("/")
    if not slash or not kind or not sub or len(mt) > 255 or not mt.isascii() or any(c <= " " for c in mt):
        raise _err(what, f"invalid media type {mt!r}")
    return mt


# -- documents -------------------------------------------------------------------------------------------


def validate_platform(value: object, what: str = "platform") -> dict:
    p = _obj(value, what)
    _str(p.get("architecture"), f"{what}.architecture", empty=False)
    _str(p.get("os"), f"{what}.os", empty=False)
    for key in ("variant", "os.version"):
        _opt_str(p, key, what)
    for key in ("os.features", "features"):
        if key in p:
            _str_list(p[key], f"{what}.{key}")
    return p


def validate_descriptor(value: object, what: str = "descriptor") -> dict:
    d = _obj(value, what)
    _media_type(d.get("mediaType"), f"{what}.mediaType")
    digest_of(d.get("digest"), f"{what}.digest")
    _int(d.get("size"), f"{what}.size")
    if "urls" in d:
        _str_list(d["urls"], f"{what}.urls")
    if "annotations" in d:
        _str_map(d["annotations"], f"{what}.annotations")
    if "platform" in d and d["platform"] is not None:
        validate_platform(d["platform"], f"{what}.platform")
    _opt_str(d, "artifactType", what)
    _opt_str(d, "data", what)
    return d


def _schema_version(doc: dict, what: str) -> None:
    if doc.get("schemaVersion") != 2 or isinstance(doc.get("schemaVersion"), bool):
        raise _err(f"{what}.schemaVersion", f"want 2, got {doc.get('schemaVersion')!r}")


def validate_manifest(value: object, what: str = "manifest", *, image: bool = True) -> dict:
    """An image manifest; with ``image`` its config and layers must be of types kobako can run."""
    m = _obj(value, what)
    _schema_version(m, what)
    if "mediaType" in m and m["mediaType"] not in MANIFEST_TYPES:
        raise _err(f"{what}.mediaType", f"{m['mediaType']!r} is not an image manifest")
    cfg = validate_descriptor(m.get("config"), f"{what}.config")
    if image and cfg["mediaType"] not in CONFIG_TYPES:
        raise _err(f"{what}.config.mediaType", f"{cfg['mediaType']!r} is not an image config")
    if image and cfg["size"] > MAX_DOCUMENT_SIZE:
        raise _err(f"{what}.config.size", f"{cfg['size']} bytes is larger than {MAX_DOCUMENT_SIZE}")
    layers = m.get("layers")
    if not isinstance(layers, list):
        raise _err(f"{what}.layers", f"want a list, got {_type_name(layers)}")
    if len(layers) > MAX_LAYERS:
        raise _err(f"{what}.layers", f"{len(layers)} layers is more than {MAX_LAYERS}")
    for i, layer in enumerate(layers):
        d = validate_descriptor(layer, f"{what}.layers[{i}]")
        if image and d["mediaType"] not in LAYER_TYPES:
            raise _err(f"{what}.layers[{i}].mediaType", f"unsupported layer media type {d['mediaType']!r}")
    if "annotations" in m:
        _str_map(m["annotations"], f"{what}.annotations")
    if m.get("subject") is not None:
        validate_descriptor(m["subject"], f"{what}.subject")
    return m


def validate_index(value: object, what: str = "index") -> dict:
    x = _obj(value, what)
    _schema_version(x, what)
    if "mediaType" in x and x["mediaType"] not in INDEX_TYPES:
        raise _err(f"{what}.mediaType", f"{x['mediaType']!r} is not an image index")
    manifests = x.get("manifests")
    if not isinstance(manifests, list):
        raise _err(f"{what}.manifests", f"want a list, got {_type_name(manifests)}")
    if len(manifests) > MAX_MANIFESTS:
        raise _err(f"{what}.manifests", f"{len(manifests)} entries is more than {MAX_MANIFESTS}")
    for i, d in enumerate(manifests):
        validate_descriptor(d, f"{what}.manifests[{i}]")
    if "annotations" in x:
        _str_map(x["annotations"], f"{what}.annotations")
    return x


_CONFIG_STRINGS = ("User", "WorkingDir", "StopSignal", "Domainname", "Hostname", "Image")
_CONFIG_LISTS = ("Env", "Entrypoint", "Cmd", "OnBuild", "Shell")


def validate_config(value: object, what: str = "config") -> dict:
    """An image configuration (the ``config``, ``rootfs`` and ``history`` kobako uses to run images)."""
    c = _obj(value, what)
    _str(c.get("architecture"), f"{what}.architecture", empty=False)
    _str(c.get("os"), f"{what}.os", empty=False)
    for key in ("variant", "os.version", "created", "author"):
        _opt_str(c, key, what)
    rootfs = _obj(c.get("rootfs"), f"{what}.rootfs")
    if rootfs.get("type") != "layers":
        raise _err(f"{what}.rootfs.type", f"want 'layers', got {rootfs.get('type')!r}")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list):
        raise _err(f"{what}.rootfs.diff_ids", f"want a list, got {_type_name(diff_ids)}")
    if len(diff_ids) > MAX_LAYERS:
        raise _err(f"{what}.rootfs.diff_ids", f"{len(diff_ids)} layers is more than {MAX_LAYERS}")
    for i, d in enumerate(diff_ids):
        digest_of(d, f"{what}.rootfs.diff_ids[{i}]")
    cfg = c.get("config")
    if cfg is not None:
        where = f"{what}.config"
        _obj(cfg, where)
        for key in _CONFIG_STRINGS:
            _opt_str(cfg, key, where)
        for key in _CONFIG_LISTS:
            if key in cfg:
                _str_list(cfg[key], f"{where}.{key}")
        for key in ("ExposedPorts", "Volumes"):
            if key in cfg:
                _set_map(cfg[key], f"{where}.{key}")
        if "Labels" in cfg:
            _str_map(cfg["Labels"], f"{where}.Labels")
        if cfg.get("ArgsEscaped") is not None and not isinstance(cfg["ArgsEscaped"], bool):
            raise _err(f"{where}.ArgsEscaped", f"want a boolean, got {_type_name(cfg['ArgsEscaped'])}")
        if cfg.get("Healthcheck") is not None:
            hc = _obj(cfg["Healthcheck"], f"{where}.Healthcheck")
            if "Test" in hc:
                _str_list(hc["Test"], f"{where}.Healthcheck.Test")
            for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
                if hc.get(key) is not None:
                    _int(hc[key], f"{where}.Healthcheck.{key}", 0, 1 << 62)
    history = c.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise _err(f"{what}.history", f"want a list, got {_type_name(history)}")
        for i, h in enumerate(history):
            h = _obj(h, f"{what}.history[{i}]")
            for key in ("created", "created_by", "author", "comment"):
                _opt_str(h, key, f"{what}.history[{i}]")
            if h.get("empty_layer") is not None and not isinstance(h["empty_layer"], bool):
                raise _err(f"{what}.history[{i}].empty_layer", "want a boolean")
    return c


def validate_layout(value: object, what: str = "oci-layout") -> dict:
    doc = _obj(value, what)
    _str(doc.get("imageLayoutVersion"), f"{what}.imageLayoutVersion", empty=False)
    return doc


def parse(data: bytes, kind: str, what: str | None = None) -> dict:
    """Decode and validate a document: ``kind`` is "manifest", "index", "config" or "layout"."""
    from kobako.oci import jsoncodec

    what = what or kind
    if len(data) > MAX_DOCUMENT_SIZE:
        raise _err(what, f"{len(data)} bytes is larger than {MAX_DOCUMENT_SIZE}")
    doc = jsoncodec.loads(data, what)
    return _VALIDATORS[kind](doc, what)


_VALIDATORS = {"manifest": validate_manifest, "index": validate_index, "config": validate_config,
               "layout": validate_layout}  # fmt: skip


def descriptor(media_type: str, digest: object, size: int, annotations: dict | None = None) -> dict:
    d: dict[str, Any] = {"mediaType": media_type, "digest": str(digest), "size": size}
    if annotations:
        d["annotations"] = dict(annotations)
    return d


def layer_compression(media_type: str) -> str:
    try:
        return LAYER_TYPES[media_type]
    except KeyError:
        raise InvalidArgument(f"unsupported layer media type {media_type!r}") from None


# -- chain IDs -------------------------------------------------------------------------------------------


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)) (image-spec config.md)."""
    out: list[str] = []
    if len(diff_ids) > 1:
        import hashlib  # only here: loading OpenSSL costs ~3 ms of every start
    for diff in diff_ids:
        if not out:
            out.append(str(diff))
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out


# -- platforms -------------------------------------------------------------------------------------------


def host_platform() -> dict:
    """The platform this machine runs: ``{"os": "linux", "architecture": "amd64"}`` (no variant probing)."""
    machine = os.uname().machine
    return {"os": "linux", "architecture": _ARCH_ALIASES.get(machine, machine)}


def normalize_platform(p: dict) -> tuple[str, str, str]:
    """(os, architecture, variant) with aliases folded and the architecture's default variant filled in."""
    os_name = str(p.get("os", "")).lower()
    arch = str(p.get("architecture", "")).lower()
    variant = str(p.get("variant") or "").lower()
    if arch in ("armhf",) and not variant:
        variant = "v7"
    elif arch == "armel" and not variant:
        variant = "v6"
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch == "arm64" and variant == "8":
        variant = "v8"
    return os_name, arch, variant or _DEFAULT_VARIANT.get(arch, "")


def _variant_level(variant: str) -> int:
    return int(variant[1:]) if len(variant) > 1 and variant[0] == "v" and variant[1:].isdigit() else -1


def platform_rank(candidate: dict, want: dict) -> int:
    """-1 if ``candidate`` cannot run on ``want``; else a rank, higher for a closer variant.

    Variants are levels (amd64 v1..v4, arm v5..v8): a host of level N runs levels ≤ N, an exact match wins.
    """
    c_os, c_arch, c_var = normalize_platform(candidate)
    w_os, w_arch, w_var = normalize_platform(want)
    if c_os != w_os or c_arch != w_arch:
        return -1
    if c_var == w_var:
        return 1000
    c_level, w_level = _variant_level(c_var), _variant_level(w_var)
    if c_level < 0 or w_level < 0 or c_level > w_level:
        return -1
    return c_level


def select_manifest(index: dict, want: dict | None = None) -> dict | None:
    """The index entry (an image manifest) that best matches ``want`` (default: this host), or None."""
    want = want or host_platform()
    best, best_rank = None, -1
    images = [d for d in index.get("manifests", []) if d.get("mediaType") in MANIFEST_TYPES]
    for d in images:
        platform = d.get("platform")
        rank = platform_rank(platform, want) if isinstance(platform, dict) else -1
        if rank > best_rank:
            best, best_rank = d, rank
    if best is None and len(images) == 1 and not isinstance(images[0].get("platform"), dict):
        return images[0]  # a single image that does not say its platform: assume it is for this one
    return best

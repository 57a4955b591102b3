"""Image-spec documents: validation of hostile JSON (errors name the field), platforms, chain IDs."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from kobako.errors import InvalidArgument
from kobako.oci import image_spec as spec

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

MANIFEST = {
    "schemaVersion": 2,
    "mediaType": spec.OCI_MANIFEST,
    "config": {"mediaType": spec.OCI_CONFIG, "digest": D1, "size": 100},
    "layers": [{"mediaType": spec.OCI_LAYER_GZIP, "digest": D2, "size": 1000}],
}
CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Cmd": ["sh"], "Env": ["A=b"], "ExposedPorts": {"80/tcp": {}}, "Labels": {"k": "v"}},
    "rootfs": {"type": "layers", "diff_ids": [D2, D3]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "x"}, {"empty_layer": True}],
}
INDEX = {
    "schemaVersion": 2,
    "manifests": [
        {
            "mediaType": spec.OCI_MANIFEST,
            "digest": D1,
            "size": 1,
            "platform": {"os": "linux", "architecture": "arm64"},
        },
        {
            "mediaType": spec.OCI_MANIFEST,
            "digest": D2,
            "size": 1,
            "platform": {"os": "linux", "architecture": "amd64"},
        },
    ],
}


def test_valid_documents_pass() -> None:
    assert spec.parse(json.dumps(MANIFEST).encode(), "manifest") == MANIFEST
    assert spec.parse(json.dumps(CONFIG).encode(), "config") == CONFIG
    assert spec.parse(json.dumps(INDEX).encode(), "index") == INDEX
    docker = copy.deepcopy(MANIFEST)
    docker["mediaType"] = spec.DOCKER_MANIFEST
    docker["config"]["mediaType"] = spec.DOCKER_CONFIG
    docker["layers"][0]["mediaType"] = spec.DOCKER_LAYER_GZIP
    spec.validate_manifest(docker)


def _mutated(doc: dict, path: list, value: object) -> dict:
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


_DELETE = object()

HOSTILE_MANIFESTS = [
    (["schemaVersion"], 1, "schemaVersion"),
    (["schemaVersion"], True, "schemaVersion"),
    (["mediaType"], spec.OCI_INDEX, "manifest.mediaType"),
    (["config"], _DELETE, "manifest.config"),
    (["config"], [], "manifest.config: want an object, got list"),
    (["config", "digest"], "sha256:xyz", "manifest.config.digest"),
    (["config", "digest"], "md5:" + "a" * 32, "manifest.config.digest"),
    (["config", "digest"], 5, "manifest.config.digest: want a string"),
    (["config", "size"], -1, "manifest.config.size"),
    (["config", "size"], "100", "manifest.config.size: want an integer"),
    (["config", "size"], True, "manifest.config.size: want an integer"),
    (["config", "size"], 10**13, "out of range"),
    (["config", "size"], 10**9, "larger than"),  # a config is a document: bounded
    (["config", "mediaType"], "text/plain", "is not an image config"),
    (["config", "mediaType"], "nonsense", "invalid media type"),
    (["layers"], None, "manifest.layers: want a list, got null"),
    (["layers"], [{"mediaType": spec.OCI_LAYER}] * 2, "manifest.layers[0].digest"),
    (["layers", 0, "mediaType"], "application/x-evil", "unsupported layer media type"),
    (["layers", 0, "annotations"], {"a": 1}, "manifest.layers[0].annotations['a']"),
    (["layers", 0, "urls"], "http://x", "urls"),
    (["layers", 0, "platform"], {"os": "linux"}, "platform.architecture"),
    (["annotations"], [], "manifest.annotations"),
]


@pytest.mark.parametrize(("path", "value", "message"), HOSTILE_MANIFESTS)
def test_hostile_manifest(path: list, value: object, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        spec.validate_manifest(_mutated(MANIFEST, path, value))
    assert message in str(info.value)


def test_too_many_layers() -> None:
    doc = _mutated(MANIFEST, ["layers"], MANIFEST["layers"] * (spec.MAX_LAYERS + 1))
    with pytest.raises(InvalidArgument, match="more than"):
        spec.validate_manifest(doc)


HOSTILE_CONFIGS = [
    ([], _DELETE, "want an object"),
    (["architecture"], _DELETE, "config.architecture"),
    (["os"], "", "config.os: must not be empty"),
    (["rootfs"], _DELETE, "config.rootfs"),
    (["rootfs", "type"], "tar", "config.rootfs.type"),
    (["rootfs", "diff_ids"], "x", "config.rootfs.diff_ids: want a list"),
    (["rootfs", "diff_ids", 1], "sha256:short", "config.rootfs.diff_ids[1]"),
    (["config", "Cmd"], "sh", "config.config.Cmd: want a list"),
    (["config", "Env", 0], 1, "config.config.Env[0]"),
    (["config", "ExposedPorts"], {"80/tcp": 1}, "ExposedPorts['80/tcp']"),
    (["config", "Labels"], {"a": None}, "Labels['a']"),
    (["config", "User"], 0, "config.config.User"),
    (["config", "Healthcheck"], {"Interval": "1s"}, "Healthcheck.Interval"),
    (["history"], {}, "config.history: want a list"),
    (["history", 1, "empty_layer"], "yes", "empty_layer"),
    (["history", 0, "created_by"], ["x"], "history[0].created_by"),
]


@pytest.mark.parametrize(("path", "value", "message"), HOSTILE_CONFIGS)
def test_hostile_config(path: list, value: object, message: str) -> None:
    doc = [] if not path else _mutated(CONFIG, path, value)
    with pytest.raises(InvalidArgument) as info:
        spec.validate_config(doc)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "manifest: Expecting"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1] x", "extra data"),
        (b'{"schemaVersion": NaN}', "NaN"),
        (b" " * (spec.MAX_DOCUMENT_SIZE + 1), "larger than"),
        (b"null", "want an object"),
    ],
)
def test_hostile_bytes(data: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        spec.parse(data, "manifest")
    assert message in str(info.value)


def test_index_validation() -> None:
    with pytest.raises(InvalidArgument, match=r"index.manifests\[1\].size"):
        spec.validate_index(_mutated(INDEX, ["manifests", 1, "size"], None))
    with pytest.raises(InvalidArgument, match=r"index\.mediaType"):
        spec.validate_index(_mutated(INDEX, ["mediaType"], spec.OCI_MANIFEST))


def test_chain_ids() -> None:
    assert spec.chain_ids([]) == []
    assert spec.chain_ids([D1]) == [D1]
    c2 = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    c3 = "sha256:" + hashlib.sha256(f"{c2} {D3}".encode()).hexdigest()
    assert spec.chain_ids([D1, D2, D3]) == [D1, c2, c3]


@pytest.mark.parametrize(
    ("candidate", "want", "ok"),
    [
        ({"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "amd64"}, True),
        ({"os": "linux", "architecture": "x86_64"}, {"os": "linux", "architecture": "amd64"}, True),
        (
            {"os": "linux", "architecture": "amd64", "variant": "v1"},
            {"os": "linux", "architecture": "amd64"},
            True,
        ),
        (
            {"os": "linux", "architecture": "amd64", "variant": "v3"},
            {"os": "linux", "architecture": "amd64"},
            False,
        ),
        (
            {"os": "linux", "architecture": "amd64", "variant": "v2"},
            {"os": "linux", "architecture": "amd64", "variant": "v3"},
            True,
        ),
        (
            {"os": "linux", "architecture": "arm64", "variant": "v8"},
            {"os": "linux", "architecture": "aarch64"},
            True,
        ),
        (
            {"os": "linux", "architecture": "arm", "variant": "v6"},
            {"os": "linux", "architecture": "armhf"},
            True,
        ),
        (
            {"os": "linux", "architecture": "arm", "variant": "v7"},
            {"os": "linux", "architecture": "armel"},
            False,
        ),
        ({"os": "windows", "architecture": "amd64"}, {"os": "linux", "architecture": "amd64"}, False),
        ({"os": "linux", "architecture": "arm64"}, {"os": "linux", "architecture": "amd64"}, False),
    ],
)
def test_platform_rank(candidate: dict, want: dict, ok: bool) -> None:
    assert (spec.platform_rank(candidate, want) >= 0) == ok


def test_select_manifest_prefers_exact_variant() -> None:
    want = {"os": "linux", "architecture": "amd64", "variant": "v3"}
    index = {
        "manifests": [
            {
                "mediaType": spec.OCI_MANIFEST,
                "digest": D1,
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {"mediaType": spec.OCI_MANIFEST, "digest": D2, "platform": {**want}},
            {"mediaType": "application/vnd.in-toto+json", "digest": D3, "platform": {**want}},
        ]
    }
    assert spec.select_manifest(index, want)["digest"] == D2
    assert spec.select_manifest(INDEX, {"os": "linux", "architecture": "amd64"})["digest"] == D2
    assert spec.select_manifest(INDEX, {"os": "linux", "architecture": "s390x"}) is None

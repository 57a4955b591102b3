"""Routing and the name/tag/digest grammar: hostile paths are refused before they reach the disk."""

from __future__ import annotations

import pytest
from _regtest import Registry, sha

from kobako.registry.server.app import parse_addr, route
from kobako.registry.server.names import is_tag, valid_name


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/v2/", ("base", "", "")),
        ("/v2", ("base", "", "")),
        ("/v2/_catalog", ("catalog", "", "")),
        ("/v2/a/b/blobs/uploads/", ("upload-start", "a/b", "")),
        ("/v2/a/blobs/uploads", ("upload-start", "a", "")),
        ("/v2/a/blobs/uploads/abc", ("upload", "a", "abc")),
        ("/v2/a/blobs/sha256:00", ("blob", "a", "sha256:00")),
        ("/v2/x/blobs/uploads/blobs/sha256:00", ("blob", "x/blobs/uploads", "sha256:00")),
        ("/v2/a/manifests/latest", ("manifest", "a", "latest")),
        ("/v2/blobs/manifests/manifests/v1", ("manifest", "blobs/manifests", "v1")),
        ("/v2/a/b/tags/list", ("tags", "a/b", "")),
        ("/v2/a/referrers/sha256:00", ("referrers", "a", "sha256:00")),
        ("/v1/a/manifests/x", None),
        ("/v2/a", None),
    ],
)
def test_route(path: str, want: tuple[str, str, str] | None) -> None:
    assert route(path) == want


@pytest.mark.parametrize("name", ["a", "library/busybox", "a.b/c_d/e__f/g--h", "0/9", "a" * 255])
def test_valid_names(name: str) -> None:
    assert valid_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "A", "a/../b", "..", "a/./b", "/a", "a/", "a//b", "_a", "a_", "-a", "a.", "a___b", "a/.git", "a\0b",
     "a%2fb", "é", "a b", "a" * 256, "a/_manifests"],
)  # fmt: skip
def test_invalid_names(name: str) -> None:
    assert not valid_name(name)


def test_tags() -> None:
    assert is_tag("latest") and is_tag("_x") and is_tag("V1.2-rc_3") and is_tag("a" * 128)
    for bad in ("", ".x", "-x", "a/b", "a:b", "a" * 129, "..", "a b"):
        assert not is_tag(bad)


def test_parse_addr() -> None:
    assert parse_addr("127.0.0.1:5000") == ("127.0.0.1", 5000)
    assert parse_addr("[::1]:5001") == ("::1", 5001)
    assert parse_addr(":80") == ("0.0.0.0", 80)


def _code(r) -> str:  # type: ignore[no-untyped-def]
    return r.json()["errors"][0]["code"]


@pytest.mark.parametrize("path", ["/v2/a/../etc/blobs/uploads/", "/v2/A/blobs/uploads/", "/v2/a//b/blobs/uploads/",
                                  "/v2/../../blobs/uploads/", "/v2/_x/blobs/uploads/", "/v2//a/blobs/uploads/",
                                  "/v2/a/./b/blobs/uploads/", "/v2/a\0/blobs/uploads/"])  # fmt: skip
def test_hostile_names_refused(registry: Registry, path: str) -> None:
    r = registry.call("POST", "/v2/x/blobs/uploads/", raw_path=path.replace("\\0", "\0"))
    assert r.status_code == 400 and _code(r) == "NAME_INVALID"
    assert not (registry.root / "uploads").exists() or not list((registry.root / "uploads").iterdir())
    assert list((registry.root / "repositories").iterdir()) == []


def test_ping_and_api_header(registry: Registry) -> None:
    r = registry.call("GET", "/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_unknown_method_is_unsupported(registry: Registry) -> None:
    r = registry.call("PATCH", f"/v2/a/blobs/{sha(b'x')}")
    assert r.status_code == 405 and _code(r) == "UNSUPPORTED"


def test_not_api_path(registry: Registry) -> None:
    assert registry.call("GET", "/").status_code == 404

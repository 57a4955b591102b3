"""Reference parsing and normalisation, table-driven (the registry issue reuses these rules)."""

from __future__ import annotations

import pytest

from kobako.errors import InvalidArgument
from kobako.oci.reference import familiar, normalize, parse, parse_normalized

D = "sha256:" + "a" * 64

NORMALIZED = [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("user/app", "docker.io/user/app:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/busybox:x", "docker.io/library/busybox:x"),
    ("localhost/x", "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest"),
    ("localhost:5000/a/b/c:v1.0-rc_1", "localhost:5000/a/b/c:v1.0-rc_1"),
    ("quay.io/org/img:TAG", "quay.io/org/img:TAG"),
    ("registry.example.com:443/a/b", "registry.example.com:443/a/b:latest"),
    (f"busybox@{D}", f"docker.io/library/busybox@{D}"),
    (f"busybox:1@{D}", f"docker.io/library/busybox:1@{D}"),
    ("a.b-c/e--f", "a.b-c/e--f:latest"),  # a first component with '.' is a domain
    ("ns/a.b_c__d-e", "docker.io/ns/a.b_c__d-e:latest"),
    ("[::1]:5000/x", "[::1]:5000/x:latest"),
    ("Host/x", "Host/x:latest"),  # upper-case first component: a domain
]


@pytest.mark.parametrize(("ref", "want"), NORMALIZED)
def test_normalize(ref: str, want: str) -> None:
    assert normalize(ref) == want


@pytest.mark.parametrize(
    ("ref", "short"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/user/app:1", "user/app:1"),
        ("docker.io/library/a/b:1", "library/a/b:1"),
        ("localhost:5000/x:v", "localhost:5000/x:v"),
        (f"busybox@{D}", f"busybox@{D}"),
    ],
)
def test_familiar(ref: str, short: str) -> None:
    assert familiar(ref) == short


def test_parts() -> None:
    r = parse_normalized(f"localhost:5000/a/b:v1@{D}")
    assert (r.domain, r.path, r.tag, r.digest) == ("localhost:5000", "a/b", "v1", D)
    assert r.name == "localhost:5000/a/b"
    assert parse("busybox").domain == ""
    assert parse_normalized("busybox@" + D).tag == ""
    assert str(parse_normalized("x").with_tag("y")) == "docker.io/library/x:y"


BAD = [
    ("", "empty"),
    ("UPPER", "lowercase"),
    ("ns/Upper", "lowercase"),
    ("busybox:", "tag"),
    ("busybox:-x", "tag"),
    ("busybox:" + "a" * 129, "tag"),
    ("a//b", "empty path component"),
    ("-a", "start and end"),
    ("a-", "start and end"),
    ("a...b", "separator"),
    ("a___b", "separator"),
    ("busybox@sha256:abc", "digest"),
    ("busybox@md5:" + "a" * 32, "algorithm"),
    ("a b", "unexpected character"),
    ("caf\u00e9", "unexpected character"),
    ("host:/x", "empty port"),
    ("host:abc/x", "port"),
    ("-host.com/x", "domain"),
    ("[::1/x", "IPv6"),
    ("a.b_c/x", "domain"),
    ("a" * 64, "64-byte"),
    ("x/" + "a" * 260, "longer than"),
    ("/x", "empty path component"),
]


@pytest.mark.parametrize(("ref", "why"), BAD)
def test_invalid(ref: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        normalize(ref)
    assert why in str(info.value)
    assert "invalid reference format" in str(info.value) or why == "empty"

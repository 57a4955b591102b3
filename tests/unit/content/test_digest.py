"""Digest parsing and the streaming verifier."""

from __future__ import annotations

import hashlib
import io

import pytest

from kobako.errors import InvalidArgument
from kobako.oci.digest import Digest, Verifier, verify_stream

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_parse_and_format() -> None:
    d = Digest.parse(EMPTY)
    assert (d.algorithm, str(d), Digest.parse(d)) == ("sha256", EMPTY, d)
    assert Digest.from_bytes(b"") == d and repr(d) == f"Digest('{EMPTY}')"
    assert Digest.parse("sha512:" + hashlib.sha512(b"x").hexdigest()) == Digest.from_bytes(b"x", "sha512")
    a, b = sorted([Digest.from_bytes(b"b"), Digest.from_bytes(b"a")])
    assert a.encoded < b.encoded and len({a, b, Digest.parse(str(a))}) == 2


@pytest.mark.parametrize(
    "bad",
    ["", "sha256", "sha256:", "sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64, "sha256:" + "A" * 64,
     "sha512:" + "0" * 64, "sha256:" + "0" * 63 + "/", " sha256:" + "0" * 64],
)  # fmt: skip
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        Digest.parse(bad)


def test_verifier_copy_and_verify() -> None:
    data = b"x" * 3_000_000
    v = Verifier()
    out = io.BytesIO()
    assert v.copy(io.BytesIO(data), out, limit=2_000_000) == 2_000_000
    assert v.copy(io.BytesIO(data[2_000_000:]), out) == 1_000_000
    assert out.getvalue() == data and v.size == len(data)
    assert v.verify(Digest.from_bytes(data), len(data)) == Digest.from_bytes(data)
    with pytest.raises(InvalidArgument, match="size mismatch"):
        v.verify(None, 1)
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        v.verify(EMPTY)


def test_verify_stream_and_from_stream() -> None:
    assert verify_stream(io.BytesIO(b"abc"), Digest.from_bytes(b"abc"), 3) == Digest.from_bytes(b"abc")
    assert Digest.from_stream(io.BytesIO(b"abc")) == (Digest.from_bytes(b"abc"), 3)
    with pytest.raises(InvalidArgument):
        verify_stream(io.BytesIO(b"abd"), Digest.from_bytes(b"abc"))

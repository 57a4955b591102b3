"""Blob uploads and downloads through the ASGI interface: monolithic, chunked, resumable, mounted, ranged;
hostile input is refused with the spec's code and leaves nothing behind."""

from __future__ import annotations

import os

import pytest
from _regtest import Registry, sha

from kobako.registry.server.blobs import parse_range


def code(r) -> str:  # type: ignore[no-untyped-def]
    return r.json()["errors"][0]["code"]


def published(reg: Registry) -> list[str]:
    base = reg.root / "content" / "blobs" / "sha256"
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


def test_monolithic_post(registry: Registry) -> None:
    data = os.urandom(100_000)
    d = sha(data)
    r = registry.call("POST", f"/v2/a/b/blobs/uploads/?digest={d}", data)
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/a/b/blobs/{d}"
    assert r.headers["docker-content-digest"] == d
    g = registry.call("GET", f"/v2/a/b/blobs/{d}")
    assert g.status_code == 200 and g.content == data and g.headers["docker-content-digest"] == d
    h = registry.call("HEAD", f"/v2/a/b/blobs/{d}")
    assert h.status_code == 200 and h.headers["content-length"] == str(len(data)) and h.content == b""
    assert registry.call("GET", f"/v2/other/blobs/{d}").status_code == 404  # not linked into another repo


def test_post_then_put(registry: Registry) -> None:
    data = b"hello world"
    r = registry.call("POST", "/v2/a/blobs/uploads/")
    assert r.status_code == 202 and r.headers["range"] == "0-0"
    location = r.headers["location"]
    assert location.startswith("/v2/a/blobs/uploads/")
    p = registry.call("PUT", f"{location}?digest={sha(data)}", data)
    assert p.status_code == 201
    assert registry.call("GET", f"/v2/a/blobs/{sha(data)}").content == data
    assert registry.call("GET", location).status_code == 404  # the session is over


def test_chunked_upload_in_order(registry: Registry) -> None:
    data = os.urandom(3000)
    location = registry.call("POST", "/v2/a/blobs/uploads/").headers["location"]
    for start in range(0, 3000, 1000):
        chunk = data[start : start + 1000]
        r = registry.call("PATCH", location, chunk, {"content-range": f"{start}-{start + 999}"})
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{start + 999}"
        location = r.headers["location"]
    s = registry.call("GET", location)
    assert s.status_code == 204 and s.headers["range"] == "0-2999"
    assert registry.call("PUT", f"{location}?digest={sha(data)}").status_code == 201
    assert registry.call("GET", f"/v2/a/blobs/{sha(data)}").content == data


def test_streamed_patch_without_range_then_final_chunk_in_put(registry: Registry) -> None:
    data = os.urandom(5000)
    location = registry.call("POST", "/v2/a/blobs/uploads/").headers["location"]
    assert registry.call("PATCH", location, data[:4000]).status_code == 202
    r = registry.call("PUT", f"{location}?digest={sha(data)}", data[4000:])
    assert r.status_code == 201
    assert registry.call("GET", f"/v2/a/blobs/{sha(data)}").content == data


def test_out_of_order_chunk_is_416(registry: Registry) -> None:
    location = registry.call("POST", "/v2/a/blobs/uploads/").headers["location"]
    registry.call("PATCH", location, b"x" * 10, {"content-range": "0-9"})
    r = registry.call("PATCH", location, b"y" * 10, {"content-range": "20-29"})
    assert r.status_code == 416 and code(r) == "RANGE_INVALID"
    assert r.headers["range"] == "0-9"  # where the client should resume
    bad = registry.call("PATCH", location, b"y", {"content-range": "bogus"})
    assert bad.status_code == 416
    mismatch = registry.call("PATCH", location, b"yy", {"content-range": "10-19", "content-length": "2"})
    assert mismatch.status_code == 400 and code(mismatch) == "SIZE_INVALID"


def test_wrong_digest_is_refused_and_nothing_stored(registry: Registry) -> None:
    data = b"some bytes"
    wrong = sha(b"other bytes")
    r = registry.call("POST", f"/v2/a/blobs/uploads/?digest={wrong}", data)
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    location = registry.call("POST", "/v2/a/blobs/uploads/").headers["location"]
    registry.call("PATCH", location, data)
    r = registry.call("PUT", f"{location}?digest={wrong}")
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    assert published(registry) == []
    assert list((registry.root / "content" / "ingest").iterdir()) == []
    assert registry.call("GET", f"/v2/a/blobs/{wrong}").status_code == 404


@pytest.mark.parametrize("digest", ["", "sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, "../../etc"])
def test_malformed_digest(registry: Registry, digest: str) -> None:
    r = registry.call("POST", f"/v2/a/blobs/uploads/?digest={digest}", b"x")
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    assert list((registry.root / "uploads").iterdir()) == []
    g = registry.call("GET", "/v2/a/blobs/x", raw_path=f"/v2/a/blobs/{digest or 'x'}")
    assert g.status_code in (400, 404)  # 404: "../../etc" is no API path at all


def test_unknown_and_foreign_upload_sessions(registry: Registry) -> None:
    r = registry.call("PATCH", "/v2/a/blobs/uploads/" + "0" * 32, b"x")
    assert r.status_code == 404 and code(r) == "BLOB_UPLOAD_UNKNOWN"
    r = registry.call("PATCH", "/v2/a/blobs/uploads/x", b"x", raw_path="/v2/a/blobs/uploads/..%2f..%2fetc")
    assert r.status_code == 404 and code(r) == "BLOB_UPLOAD_UNKNOWN"
    r = registry.call("PATCH", "/v2/a/blobs/uploads/x", b"x", raw_path="/v2/a/blobs/uploads/../../../etc")
    assert r.status_code == 404
    location = registry.call("POST", "/v2/a/blobs/uploads/").headers["location"]
    upload_id = location.rsplit("/", 1)[1]
    r = registry.call("PATCH", f"/v2/b/blobs/uploads/{upload_id}", b"x")  # a session of another repository
    assert r.status_code == 404 and code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_cancel_upload(registry: Registry) -> None:
    location = registry.call("POST", "/v2/a/blobs/uploads/").headers["location"]
    registry.call("PATCH", location, b"partial")
    assert registry.call("DELETE", location).status_code == 204
    assert registry.call("GET", location).status_code == 404
    assert list((registry.root / "content" / "ingest").iterdir()) == []


def test_upload_survives_restart(registry: Registry) -> None:
    data = os.urandom(4096)
    location = registry.call("POST", "/v2/a/blobs/uploads/").headers["location"]
    registry.call("PATCH", location, data[:1000], {"content-range": "0-999"})
    registry.restart()
    s = registry.call("GET", location)
    assert s.status_code == 204 and s.headers["range"] == "0-999"
    r = registry.call("PATCH", location, data[1000:], {"content-range": f"1000-{len(data) - 1}"})
    assert r.status_code == 202
    assert registry.call("PUT", f"{location}?digest={sha(data)}").status_code == 201
    assert registry.call("GET", f"/v2/a/blobs/{sha(data)}").content == data


def test_cross_repository_mount(registry: Registry) -> None:
    d = registry.upload("src/repo", b"shared layer")
    r = registry.call("POST", f"/v2/dst/blobs/uploads/?mount={d}&from=src/repo")
    assert r.status_code == 201 and r.headers["location"] == f"/v2/dst/blobs/{d}"
    assert registry.call("GET", f"/v2/dst/blobs/{d}").content == b"shared layer"
    missing = sha(b"nope")
    r = registry.call("POST", f"/v2/dst/blobs/uploads/?mount={missing}&from=src/repo")
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["location"]  # falls back to a session
    r = registry.call("POST", f"/v2/dst/blobs/uploads/?mount={d}&from=../src")
    assert r.status_code == 400 and code(r) == "NAME_INVALID"


def test_ranges(registry: Registry) -> None:
    data = bytes(range(256)) * 4
    d = registry.upload("a", data)
    r = registry.call("GET", f"/v2/a/blobs/{d}", headers={"range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = registry.call("GET", f"/v2/a/blobs/{d}", headers={"range": "bytes=1000-"})
    assert r.status_code == 206 and r.content == data[1000:]
    r = registry.call("GET", f"/v2/a/blobs/{d}", headers={"range": "bytes=-4"})
    assert r.content == data[-4:]
    r = registry.call("GET", f"/v2/a/blobs/{d}", headers={"range": "bytes=5000-"})
    assert r.status_code == 416 and code(r) == "RANGE_INVALID"
    assert r.headers["content-range"] == f"bytes */{len(data)}"


def test_parse_range() -> None:
    assert parse_range("bytes=0-0", 10) == (0, 1)
    assert parse_range("bytes=5-100", 10) == (5, 5)
    assert parse_range("bytes=-3", 10) == (7, 3)
    for bad in ("bytes=3-1", "items=0-1", "bytes=0-1,3-4", "bytes=x-", "bytes=-", "bytes=10-", "bytes=-0"):
        assert parse_range(bad, 10) is None, bad


def test_delete_blob(registry: Registry) -> None:
    d = registry.upload("a", b"to delete")
    assert registry.call("DELETE", f"/v2/a/blobs/{d}").status_code == 202
    assert registry.call("GET", f"/v2/a/blobs/{d}").status_code == 404
    r = registry.call("DELETE", f"/v2/a/blobs/{d}")
    assert r.status_code == 404 and code(r) == "BLOB_UNKNOWN"


def test_bad_content_length(registry: Registry) -> None:
    import httpx

    request = httpx.Request(
        "POST", f"http://registry.test/v2/a/blobs/uploads/?digest={sha(b'x')}", content=b"x"
    )
    request.headers["content-length"] = "nope"
    r = registry.bridge(request)
    assert r.status_code == 400 and code(r) == "SIZE_INVALID"

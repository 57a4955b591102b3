"""Server auth (htpasswd with bcrypt, anonymous read) and garbage collection."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest
from _regtest import Registry, image_docs, push_image, sha

from kobako.errors import InvalidArgument
from kobako.registry.server.auth import hash_password, load_htpasswd
from kobako.registry.server.gc import collect


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    # $2y$ is what Apache's htpasswd -B writes
    path.write_text(f"alice:{hash_password('wonderland', rounds=4).replace('$2b$', '$2y$', 1)}\n# comment\n")
    return path


def test_auth_required(tmp_path: Path, htpasswd: Path) -> None:
    reg = Registry(tmp_path / "r", htpasswd=str(htpasswd))
    try:
        r = reg.call("GET", "/v2/")
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert r.headers["www-authenticate"] == 'Basic realm="kobako registry"'
        assert reg.call("GET", "/v2/", headers=basic("alice", "nope")).status_code == 401
        assert reg.call("GET", "/v2/", headers=basic("bob", "wonderland")).status_code == 401
        assert reg.call("GET", "/v2/", headers={"authorization": "Basic !!!"}).status_code == 401
        assert reg.call("GET", "/v2/", headers={"authorization": "Bearer x"}).status_code == 401
        ok = basic("alice", "wonderland")
        assert reg.call("GET", "/v2/", headers=ok).status_code == 200
        assert reg.call("GET", "/v2/", headers=ok).status_code == 200  # cached
        d = sha(b"data")
        assert reg.call("POST", f"/v2/a/blobs/uploads/?digest={d}", b"data").status_code == 401
        assert reg.call("POST", f"/v2/a/blobs/uploads/?digest={d}", b"data", headers=ok).status_code == 201
        assert reg.call("GET", f"/v2/a/blobs/{d}").status_code == 401
    finally:
        reg.close()


def test_anonymous_read(tmp_path: Path, htpasswd: Path) -> None:
    reg = Registry(tmp_path / "r", htpasswd=str(htpasswd), anonymous_read=True)
    try:
        ok = basic("alice", "wonderland")
        d = sha(b"data")
        assert reg.call("POST", f"/v2/a/blobs/uploads/?digest={d}", b"data", headers=ok).status_code == 201
        assert reg.call("GET", f"/v2/a/blobs/{d}").content == b"data"
        assert reg.call("GET", "/v2/").status_code == 200
        assert reg.call("DELETE", f"/v2/a/blobs/{d}").status_code == 401
        assert reg.call("POST", "/v2/a/blobs/uploads/").status_code == 401
        assert reg.call("GET", "/v2/", headers=basic("alice", "bad")).status_code == 401  # wrong is wrong
    finally:
        reg.close()


def test_htpasswd_file_checks(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("alice:{SHA}abcdef\n")
    with pytest.raises(InvalidArgument, match="bcrypt"):
        load_htpasswd(str(bad))


def test_htpasswd_reloaded_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{hash_password('one', rounds=4)}\n")
    reg = Registry(tmp_path / "r", htpasswd=str(path))
    try:
        assert reg.call("GET", "/v2/", headers=basic("alice", "one")).status_code == 200
        path.write_text(f"alice:{hash_password('two', rounds=4)}\n")
        os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        assert reg.call("GET", "/v2/", headers=basic("alice", "one")).status_code == 401
        assert reg.call("GET", "/v2/", headers=basic("alice", "two")).status_code == 200
    finally:
        reg.close()


def _blobs(reg: Registry) -> set[str]:
    return {"sha256:" + p.name for p in (reg.root / "content" / "blobs" / "sha256").iterdir()}


def test_gc_removes_unreferenced_blobs(registry: Registry) -> None:
    keep_digest, keep = push_image(registry, "keep", "1", {"k": b"keep"})
    gone_digest, gone = push_image(registry, "gone", "1", {"g": b"gone"})
    stray = registry.upload("keep", b"uploaded, never used")
    assert registry.call("DELETE", f"/v2/gone/manifests/{gone_digest}").status_code == 202

    kept = collect(str(registry.root), grace=3600)  # everything is young: nothing goes
    assert kept.blobs == []

    dry = collect(str(registry.root), grace=0, dry_run=True)
    assert set(dry.blobs) == {gone_digest, gone["config"]["digest"], gone["layers"][0]["digest"], stray}
    assert gone_digest in _blobs(registry)

    result = collect(str(registry.root), grace=0)
    assert set(result.blobs) == set(dry.blobs) and result.bytes > 0
    left = _blobs(registry)
    assert {keep_digest, keep["config"]["digest"], keep["layers"][0]["digest"]} <= left
    assert not left & set(result.blobs)
    assert registry.call("GET", "/v2/keep/manifests/1").status_code == 200
    assert registry.call("GET", f"/v2/keep/blobs/{stray}").status_code == 404
    assert collect(str(registry.root), grace=0).blobs == []


def test_gc_keeps_index_children(registry: Registry) -> None:
    d1, m1 = push_image(registry, "multi", "x", {"a": b"1"})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": m1["mediaType"], "digest": d1, "size": len(json.dumps(m1))}]}  # fmt: skip
    registry.put_manifest("multi", "latest", index, index["mediaType"])
    assert registry.call("DELETE", "/v2/multi/manifests/x").status_code == 202  # only the tag
    assert collect(str(registry.root), grace=0).blobs == []


def test_gc_stops_on_unreadable_manifest(registry: Registry) -> None:
    digest, _ = push_image(registry, "a", "1", {"f": b"x"})
    registry.upload("a", b"stray")
    blob = registry.root / "content" / "blobs" / "sha256" / digest.split(":")[1]
    blob.chmod(0o644)
    blob.write_bytes(b"garbage")
    result = collect(str(registry.root), grace=0)
    assert result.errors and result.blobs == []


def test_gc_drops_idle_uploads(registry: Registry) -> None:
    location = registry.call("POST", "/v2/a/blobs/uploads/").headers["location"]
    registry.call("PATCH", location, b"partial")
    registry.app.uploads.close()
    upload_id = location.rsplit("/", 1)[1]
    old = time.time() - 3 * 24 * 3600
    for p in (registry.root / "content" / "ingest").rglob("*"):
        os.utime(p, (old, old))
    session = registry.root / "uploads" / f"{upload_id}.json"
    session.write_text(json.dumps({"name": "a", "started": old}))
    assert collect(str(registry.root)).uploads == [upload_id]
    assert registry.call("GET", location).status_code == 404


def test_manifest_after_gc_needs_blobs_again(registry: Registry) -> None:
    manifest, config, layer = image_docs({"f": b"x"})
    registry.upload("a", config)
    registry.upload("a", layer)
    collect(str(registry.root), grace=0)  # no manifest names them yet: swept with their links
    r = registry.put_manifest("a", "1", manifest)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"

"""Manifests, tags, catalog and referrers through the ASGI interface, hostile manifests included."""

from __future__ import annotations

import json

import pytest
from _regtest import OCI_INDEX, OCI_MANIFEST, Registry, image_docs, push_image, sha

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def code(r) -> str:  # type: ignore[no-untyped-def]
    return r.json()["errors"][0]["code"]


def manifests_in_store(reg: Registry) -> int:
    base = reg.root / "content" / "blobs" / "sha256"
    return len(list(base.iterdir())) if base.exists() else 0


def test_put_get_head_by_tag_and_digest(registry: Registry) -> None:
    digest, manifest = push_image(registry, "lib/app", "v1", {"hello": b"world"})
    body = json.dumps(manifest).encode()
    assert digest == sha(body)
    for ref in ("v1", digest):
        r = registry.call("GET", f"/v2/lib/app/manifests/{ref}", headers={"accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.content == body
        assert r.headers["content-type"] == OCI_MANIFEST and r.headers["docker-content-digest"] == digest
        h = registry.call("HEAD", f"/v2/lib/app/manifests/{ref}")
        assert h.status_code == 200 and h.headers["content-length"] == str(len(body))
        assert h.headers["docker-content-digest"] == digest


def test_docker_schema2_kept_as_is(registry: Registry) -> None:
    digest, _ = push_image(registry, "d", "1", {"f": b"x"}, media_type=DOCKER_MANIFEST,
                                  config_type=DOCKER_CONFIG, layer_type=DOCKER_LAYER)  # fmt: skip
    r = registry.call("GET", "/v2/d/manifests/1", headers={"accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"})
    assert r.headers["content-type"] == DOCKER_MANIFEST and sha(r.content) == digest


def test_content_negotiation(registry: Registry) -> None:
    push_image(registry, "a", "1", {"f": b"x"})
    r = registry.call("GET", "/v2/a/manifests/1", headers={"accept": DOCKER_MANIFEST})
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"
    for accept in ("*/*", f"{DOCKER_MANIFEST};q=0.9, {OCI_MANIFEST}", "application/*"):
        assert registry.call("GET", "/v2/a/manifests/1", headers={"accept": accept}).status_code == 200


def test_unknown_manifest_and_repository(registry: Registry) -> None:
    r = registry.call("GET", "/v2/nope/manifests/latest")
    assert r.status_code == 404 and code(r) == "NAME_UNKNOWN"
    push_image(registry, "a", "1", {"f": b"x"})
    r = registry.call("GET", "/v2/a/manifests/2")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"
    r = registry.call("GET", f"/v2/a/manifests/{sha(b'x')}")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"


def test_manifest_with_missing_blobs_refused(registry: Registry) -> None:
    manifest, config, _layer = image_docs({"f": b"x"})
    registry.upload("a", config)  # the layer is never uploaded
    before = manifests_in_store(registry)
    r = registry.put_manifest("a", "1", manifest)
    assert r.status_code == 400 and code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert r.json()["errors"][0]["detail"]["digest"] == manifest["layers"][0]["digest"]
    assert manifests_in_store(registry) == before
    assert registry.call("GET", "/v2/a/manifests/1").status_code == 404


def test_manifest_blob_size_mismatch_refused(registry: Registry) -> None:
    manifest, config, layer = image_docs({"f": b"x"})
    registry.upload("a", config)
    registry.upload("a", layer)
    manifest["layers"][0]["size"] += 1
    r = registry.put_manifest("a", "1", manifest)
    assert r.status_code == 400 and code(r) == "MANIFEST_INVALID"


def test_blob_of_other_repository_does_not_count(registry: Registry) -> None:
    manifest, config, layer = image_docs({"f": b"x"})
    registry.upload("other", config)
    registry.upload("other", layer)
    r = registry.put_manifest("mine", "1", manifest)
    assert r.status_code == 400 and code(r) == "MANIFEST_BLOB_UNKNOWN"


def test_oversized_manifest_refused(registry: Registry) -> None:
    body = b'{"schemaVersion": 2, "pad": "' + b"x" * (4 << 20) + b'"}'
    r = registry.call("PUT", "/v2/a/manifests/1", body, {"content-type": OCI_MANIFEST})
    assert r.status_code == 413 and code(r) == "SIZE_INVALID"
    assert manifests_in_store(registry) == 0


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"schemaVersion": 1}', b'{"schemaVersion": 2, "mediaType": "text/plain"}',
     b'{"schemaVersion": 2, "config": {"mediaType": "x/y", "digest": "sha256:00", "size": 1}, "layers": []}',
     b'{"schemaVersion": 2, "manifests": "nope", "mediaType": "application/vnd.oci.image.index.v1+json"}'],
)  # fmt: skip
def test_invalid_manifests(registry: Registry, body: bytes) -> None:
    r = registry.call("PUT", "/v2/a/manifests/1", body, {"content-type": OCI_MANIFEST})
    assert r.status_code == 400 and code(r) == "MANIFEST_INVALID", r.text
    assert manifests_in_store(registry) == 0


def test_media_type_mismatch(registry: Registry) -> None:
    manifest, config, layer = image_docs({"f": b"x"})
    registry.upload("a", config)
    registry.upload("a", layer)
    r = registry.put_manifest("a", "1", manifest, media_type=OCI_INDEX)
    assert r.status_code == 400 and code(r) == "MANIFEST_INVALID"


def test_put_by_wrong_digest_refused(registry: Registry) -> None:
    manifest, config, layer = image_docs({"f": b"x"})
    registry.upload("a", config)
    registry.upload("a", layer)
    r = registry.put_manifest("a", sha(b"something else"), manifest)
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    ok = registry.put_manifest("a", sha(json.dumps(manifest).encode()), manifest)
    assert ok.status_code == 201
    assert registry.call("GET", "/v2/a/tags/list").json()["tags"] == []  # pushed by digest: no tag


def test_invalid_tag(registry: Registry) -> None:
    r = registry.call("PUT", "/v2/a/manifests/-bad", b"{}", {"content-type": OCI_MANIFEST})
    assert r.status_code == 400 and code(r) == "MANIFEST_INVALID"


def test_index_needs_its_manifests(registry: Registry) -> None:
    d1, m1 = push_image(registry, "multi", "amd", {"a": b"1"})
    index = {
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d1, "size": len(json.dumps(m1)), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": sha(b"missing"), "size": 10, "platform": {"os": "linux", "architecture": "arm64"}},
        ],
    }  # fmt: skip
    r = registry.put_manifest("multi", "latest", index, OCI_INDEX)
    assert r.status_code == 400 and code(r) == "MANIFEST_BLOB_UNKNOWN"
    index["manifests"].pop()
    r = registry.put_manifest("multi", "latest", index, OCI_INDEX)
    assert r.status_code == 201
    g = registry.call("GET", "/v2/multi/manifests/latest")
    assert g.headers["content-type"] == OCI_INDEX


def test_delete_tag_and_manifest(registry: Registry) -> None:
    digest, _ = push_image(registry, "a", "1", {"f": b"x"})
    registry.put_manifest("a", "2", json.loads(registry.call("GET", "/v2/a/manifests/1").content))
    assert registry.call("DELETE", "/v2/a/manifests/2").status_code == 202
    assert registry.call("GET", "/v2/a/manifests/2").status_code == 404
    assert registry.call("GET", "/v2/a/manifests/1").status_code == 200
    assert registry.call("DELETE", f"/v2/a/manifests/{digest}").status_code == 202
    assert registry.call("GET", "/v2/a/manifests/1").status_code == 404  # its tags went with it
    r = registry.call("DELETE", f"/v2/a/manifests/{digest}")
    assert r.status_code == 404 and code(r) == "MANIFEST_UNKNOWN"


def test_delete_can_be_disabled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    reg = Registry(tmp_path / "r", delete=False)
    try:
        digest, _ = push_image(reg, "a", "1", {"f": b"x"})
        r = reg.call("DELETE", f"/v2/a/manifests/{digest}")
        assert r.status_code == 405 and code(r) == "UNSUPPORTED"
    finally:
        reg.close()


def test_tags_pagination(registry: Registry) -> None:
    _digest, manifest = push_image(registry, "a", "b", {"f": b"x"})
    for tag in ("d", "a", "c", "e"):
        assert registry.put_manifest("a", tag, manifest).status_code == 201
    assert registry.call("GET", "/v2/a/tags/list").json() == {"name": "a", "tags": ["a", "b", "c", "d", "e"]}
    r = registry.call("GET", "/v2/a/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"]
    assert r.headers["link"] == '</v2/a/tags/list?n=2&last=b>; rel="next"'
    r = registry.call("GET", "/v2/a/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "d"] and "link" in r.headers
    r = registry.call("GET", "/v2/a/tags/list?n=2&last=d")
    assert r.json()["tags"] == ["e"] and "link" not in r.headers
    r = registry.call("GET", "/v2/a/tags/list?n=0")
    assert r.json()["tags"] == [] and "link" not in r.headers
    assert registry.call("GET", "/v2/a/tags/list?last=c").json()["tags"] == ["d", "e"]
    bad = registry.call("GET", "/v2/a/tags/list?n=-1")
    assert bad.status_code == 400
    r = registry.call("GET", "/v2/missing/tags/list")
    assert r.status_code == 404 and code(r) == "NAME_UNKNOWN"


def test_catalog(registry: Registry) -> None:
    for name in ("b/x", "a", "b", "c/d/e"):
        push_image(registry, name, "1", {"f": b"x"})
    assert registry.call("GET", "/v2/_catalog").json() == {"repositories": ["a", "b", "b/x", "c/d/e"]}
    r = registry.call("GET", "/v2/_catalog?n=3")
    assert r.json()["repositories"] == ["a", "b", "b/x"]
    assert r.headers["link"] == '</v2/_catalog?n=3&last=b%2Fx>; rel="next"'


def test_referrers(registry: Registry) -> None:
    subject, subject_manifest = push_image(registry, "app", "1", {"f": b"x"})
    empty = registry.upload("app", b"{}")
    sig_blob = registry.upload("app", b"signature bytes")

    def artifact(artifact_type: str, note: str) -> dict:
        return {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": sig_blob, "size": 15}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(json.dumps(subject_manifest))},
            "annotations": {"note": note},
        }  # fmt: skip

    sig = artifact("application/vnd.example.sig", "one")
    sbom = artifact("application/vnd.example.sbom", "two")
    r1 = registry.put_manifest("app", sha(json.dumps(sig).encode()), sig)
    assert r1.status_code == 201 and r1.headers["oci-subject"] == subject
    registry.put_manifest("app", sha(json.dumps(sbom).encode()), sbom)
    r = registry.call("GET", f"/v2/app/referrers/{subject}")
    assert r.status_code == 200 and r.headers["content-type"] == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    found = {d["artifactType"]: d for d in index["manifests"]}
    assert set(found) == {"application/vnd.example.sig", "application/vnd.example.sbom"}
    assert found["application/vnd.example.sig"]["digest"] == r1.headers["docker-content-digest"]
    assert found["application/vnd.example.sig"]["annotations"] == {"note": "one"}
    f = registry.call("GET", f"/v2/app/referrers/{subject}?artifactType=application/vnd.example.sbom")
    assert f.headers["oci-filters-applied"] == "artifactType"
    assert [d["artifactType"] for d in f.json()["manifests"]] == ["application/vnd.example.sbom"]
    none = registry.call("GET", f"/v2/app/referrers/{sha(b'unknown')}")
    assert none.status_code == 200 and none.json()["manifests"] == []
    bad = registry.call("GET", "/v2/app/referrers/nope")
    assert bad.status_code == 400 and code(bad) == "DIGEST_INVALID"
    registry.call("DELETE", f"/v2/app/manifests/{r1.headers['docker-content-digest']}")
    left = registry.call("GET", f"/v2/app/referrers/{subject}").json()["manifests"]
    assert [d["artifactType"] for d in left] == ["application/vnd.example.sbom"]


def test_referrer_pushed_before_its_subject(registry: Registry) -> None:
    empty = registry.upload("app", b"{}")
    subject = sha(b"not pushed yet")
    doc = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.example.config", "digest": empty, "size": 2}, "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100},
    }  # fmt: skip
    assert registry.put_manifest("app", "sig", doc).status_code == 201
    got = registry.call("GET", f"/v2/app/referrers/{subject}").json()["manifests"]
    assert got[0]["artifactType"] == "application/vnd.example.config"  # the config's type stands in

"""The client's pull and push against the server in-process (the transport seam plugged to the ASGI app):
round trips with identical digests, indexes and platforms, resumed and corrupt transfers, chunked uploads,
cross-repository mounts, mirrors, token auth, scheme fallback."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from _regtest import OCI_INDEX, OCI_MANIFEST, Registry, local_image, push_image, sha, transports

from kobako.errors import InvalidArgument, NotFound
from kobako.oci.digest import Digest
from kobako.registry.client.hosts import Endpoint
from kobako.registry.client.progress import PlainProgress
from kobako.registry.client.pull import pull
from kobako.registry.client.push import push
from kobako.registry.client.transport import HandlerTransport

Handler = Callable[[httpx.Request], httpx.Response]


def test_push_pull_round_trip(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    src, dst = svc_factory("src"), svc_factory("dst")
    image_id = local_image(src, "registry.test/lib/app:1")
    local = src.resolve("registry.test/lib/app:1")
    out = io.StringIO()
    pushed = push(src, "registry.test/lib/app:1", config={}, progress=PlainProgress(out),
                  transport_factory=transports(registry.bridge))  # fmt: skip
    assert pushed.digest == local.manifest_digest
    assert "The push refers to repository [registry.test/lib/app]" in out.getvalue()
    assert f"1: digest: {local.manifest_digest} size: " in out.getvalue()
    pulled = pull(dst, "registry.test/lib/app:1", config={}, transport_factory=transports(registry.bridge))
    assert pulled.digest == local.manifest_digest and pulled.image_id == image_id
    image = dst.resolve("registry.test/lib/app:1")
    assert image.id == image_id and image.manifest_digest == local.manifest_digest
    assert [layer["digest"] for layer in image.layers] == [layer["digest"] for layer in local.layers]
    assert dst.snapshotter().stat(image.top_snapshot)  # unpacked
    by_digest = pull(dst, f"registry.test/lib/app@{local.manifest_digest}", config={},
                     transport_factory=transports(registry.bridge))  # fmt: skip
    assert by_digest.downloaded == 0
    assert dst.resolve(f"registry.test/lib/app@{local.manifest_digest}").id == image_id


def test_push_again_skips_existing_and_mounts_across_repositories(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    src = svc_factory("src")
    local_image(src, "registry.test/a:1")
    push(src, "registry.test/a:1", config={}, transport_factory=transports(registry.bridge))
    calls_before = len(registry.bridge.calls)
    out = io.StringIO()
    push(
        src,
        "registry.test/a:1",
        config={},
        progress=PlainProgress(out),
        transport_factory=transports(registry.bridge),
    )
    again = registry.bridge.calls[calls_before:]
    assert not [c for c in again if c[0] in ("POST", "PATCH") or (c[0] == "PUT" and "/blobs/" in c[1])]
    assert out.getvalue().count("Layer already exists") == 2
    calls_before = len(registry.bridge.calls)
    out = io.StringIO()
    push(src, "registry.test/a:1", "registry.test/b:2", config={}, progress=PlainProgress(out),
         transport_factory=transports(registry.bridge))  # fmt: skip
    moved = registry.bridge.calls[calls_before:]
    mounts = [c for c in moved if c[0] == "POST" and "mount=" in c[1] and "from=a" in c[1]]
    assert len(mounts) == 2 and "Mounted from a" in out.getvalue()
    assert not [c for c in moved if c[0] == "PUT" and "/blobs/" in c[1]]
    assert registry.call("GET", "/v2/b/manifests/2").status_code == 200


def test_chunked_push(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    src, dst = svc_factory("src"), svc_factory("dst")
    local_image(src, "registry.test/c:1", size=300_000)
    seen: list[httpx.Request] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return registry.bridge(request)

    push(src, "registry.test/c:1", config={}, chunk_size=64 << 10, transport_factory=transports(spy))
    ranges = [r.headers["content-range"] for r in seen if r.method == "PATCH"]
    assert ranges[:2] == ["0-65535", "65536-131071"] and len(ranges) >= 4
    pull(dst, "registry.test/c:1", config={}, transport_factory=transports(registry.bridge))
    assert (
        dst.resolve("registry.test/c:1").manifest_digest == src.resolve("registry.test/c:1").manifest_digest
    )


def _arch_index(registry: Registry) -> tuple[str, dict[str, str]]:
    digests = {}
    manifests = []
    for arch in ("amd64", "arm64"):
        d, m = push_image(registry, "multi", arch, {"arch": arch.encode()}, arch=arch)
        digests[arch] = d
        manifests.append({"mediaType": OCI_MANIFEST, "digest": d, "size": len(json.dumps(m)),
                          "platform": {"os": "linux", "architecture": arch}})  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    r = registry.put_manifest("multi", "latest", index, OCI_INDEX)
    return r.headers["docker-content-digest"], digests


def test_pull_index_selects_platform(
    registry: Registry, svc_factory, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from kobako.oci import image_spec

    monkeypatch.setattr(image_spec, "host_platform", lambda: {"os": "linux", "architecture": "amd64"})
    index_digest, digests = _arch_index(registry)
    svc = svc_factory("dst")
    p = pull(svc, "registry.test/multi:latest", config={}, transport_factory=transports(registry.bridge))
    assert p.digest == index_digest
    image = svc.resolve("registry.test/multi:latest")
    assert image.config["architecture"] == "amd64" and image.manifest_digest == digests["amd64"]
    assert image.target["digest"] == index_digest  # the host's pick: the index is the record's target
    other = svc_factory("dst2")
    pull(other, "registry.test/multi:latest", platform="linux/arm64", config={},
         transport_factory=transports(registry.bridge))  # fmt: skip
    image = other.resolve("registry.test/multi:latest")
    assert image.config["architecture"] == "arm64" and image.target["digest"] == digests["arm64"]
    with pytest.raises(NotFound, match="no image for platform linux/s390x"):
        pull(other, "registry.test/multi:latest", platform="linux/s390x", config={},
             transport_factory=transports(registry.bridge))  # fmt: skip


def test_pull_docker_schema2(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    d, _ = push_image(registry, "docker", "1", {"f": b"x"},
                      media_type="application/vnd.docker.distribution.manifest.v2+json",
                      config_type="application/vnd.docker.container.image.v1+json",
                      layer_type="application/vnd.docker.image.rootfs.diff.tar")  # fmt: skip
    svc = svc_factory("dst")
    assert (
        pull(svc, "registry.test/docker:1", config={}, transport_factory=transports(registry.bridge)).digest
        == d
    )
    assert svc.resolve("registry.test/docker:1").target["mediaType"].startswith("application/vnd.docker")


class CutStream(httpx.SyncByteStream):
    """A body that stops after ``cut`` bytes with a dropped connection."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data, self.cut = data, cut

    def __iter__(self) -> Iterator[bytes]:
        yield self.data[: self.cut]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_interrupted_pull_resumes_with_range(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    _d, manifest = push_image(registry, "big", "1", {"blob": os.urandom(500_000)})
    layer = manifest["layers"][0]
    ranges: list[str | None] = []
    state = {"cut": True}

    def flaky(request: httpx.Request) -> httpx.Response:
        response = registry.bridge(request)
        if request.url.path.endswith(layer["digest"]) and request.method == "GET":
            ranges.append(request.headers.get("range"))
            if state["cut"]:
                state["cut"] = False
                return httpx.Response(
                    200, headers=response.headers, stream=CutStream(response.content, 123_456)
                )
        return response

    svc = svc_factory("dst")
    pull(svc, "registry.test/big:1", config={}, transport_factory=transports(flaky))
    assert ranges == [None, "bytes=123456-"]
    assert svc.has_blob(layer["digest"])


def test_pull_resumes_an_earlier_process_ingest(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    data = {"blob": os.urandom(300_000)}
    _d, manifest = push_image(registry, "big", "1", data)
    layer = manifest["layers"][0]
    svc = svc_factory("dst")
    blob = registry.call("GET", f"/v2/big/blobs/{layer['digest']}").content
    with svc.content.writer(f"pull-{layer['digest']}", layer["digest"], layer["size"]) as w:
        w.write(blob[:100_000])  # what a killed pull left
    ranges = []

    def spy(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(layer["digest"]):
            ranges.append(request.headers.get("range"))
        return registry.bridge(request)

    pull(svc, "registry.test/big:1", config={}, transport_factory=transports(spy))
    assert ranges == ["bytes=100000-"]


def test_registry_ignoring_range_restarts(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    _d, manifest = push_image(registry, "big", "1", {"blob": os.urandom(50_000)})
    layer = manifest["layers"][0]
    svc = svc_factory("dst")
    with svc.content.writer(f"pull-{layer['digest']}", layer["digest"], layer["size"]) as w:
        w.write(b"\0" * 1000)  # wrong bytes: only a full download can fix them

    def no_ranges(request: httpx.Request) -> httpx.Response:
        if "range" in request.headers:
            del request.headers["range"]
        return registry.bridge(request)

    pull(svc, "registry.test/big:1", config={}, transport_factory=transports(no_ranges))
    assert svc.has_blob(layer["digest"])


def test_corrupt_blob_refused(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    _d, manifest = push_image(registry, "bad", "1", {"f": os.urandom(10_000)})
    layer = manifest["layers"][0]

    def corrupt(request: httpx.Request) -> httpx.Response:
        response = registry.bridge(request)
        if request.url.path.endswith(layer["digest"]) and request.method == "GET":
            body = bytearray(response.content)
            body[5000] ^= 0xFF
            return httpx.Response(200, headers=response.headers, content=bytes(body))
        return response

    svc = svc_factory("dst")
    with pytest.raises(InvalidArgument, match="corrupt"):
        pull(svc, "registry.test/bad:1", config={}, transport_factory=transports(corrupt))
    assert not svc.has_blob(layer["digest"])
    assert svc.content.statuses() == []  # the bad bytes are gone, not kept for a resume
    with pytest.raises(NotFound):
        svc.resolve("registry.test/bad:1")


def test_manifest_not_matching_its_digest_refused(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    d, _ = push_image(registry, "m", "1", {"f": b"x"})

    def tamper(request: httpx.Request) -> httpx.Response:
        response = registry.bridge(request)
        if "/manifests/" in request.url.path:
            doc = json.loads(response.content)
            doc["annotations"] = {"evil": "yes"}
            return httpx.Response(200, headers={"content-type": OCI_MANIFEST, "docker-content-digest": d},
                                  content=json.dumps(doc).encode())  # fmt: skip
        return response

    svc = svc_factory("dst")
    with pytest.raises(InvalidArgument, match=r"does not match|hashing to"):
        pull(svc, "registry.test/m:1", config={}, transport_factory=transports(tamper))
    with pytest.raises(InvalidArgument, match="hashing to"):
        pull(svc, f"registry.test/m@{d}", config={}, transport_factory=transports(tamper))


def test_mirrors(registry: Registry, tmp_path: Path, svc_factory) -> None:  # type: ignore[no-untyped-def]
    d, _ = push_image(registry, "library/app", "1", {"f": b"x"})
    empty = Registry(tmp_path / "empty")
    hits: list[str] = []

    def route(endpoint: Endpoint) -> HandlerTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            hits.append(endpoint.host)
            return (empty if endpoint.host == "empty.test" else registry).bridge(request)

        return HandlerTransport(handle)

    config = {"docker.io": {"mirrors": ["empty.test", "full.test"], "insecure": None, "ca": None}}
    svc = svc_factory("dst")
    p = pull(svc, "app:1", config=config, transport_factory=route)
    assert p.digest == d and p.name == "docker.io/library/app:1"
    assert "registry-1.docker.io" not in hits and "empty.test" in hits and "full.test" in hits
    empty.close()


def test_unknown_image(registry: Registry, svc_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound, match=r"MANIFEST_UNKNOWN|NAME_UNKNOWN"):
        pull(
            svc_factory("dst"),
            "registry.test/nope:1",
            config={},
            transport_factory=transports(registry.bridge),
        )


def test_digest_helper_matches_spec_example() -> None:
    assert str(Digest.from_bytes(b"")) == sha(b"")

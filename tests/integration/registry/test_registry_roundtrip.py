"""kobako client ↔ kobako server over loopback: push/pull round trips with identical digests, resumed and
corrupt transfers, uploads across a server restart, gc, CLI errors."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from _proxy import CuttingProxy
from _regserver import Kobako, Server

pytestmark = [pytest.mark.root]


def imported(k: Kobako, busybox_tar: Path, name: str) -> tuple[str, str]:
    """(image ID, manifest digest) of the busybox rootfs imported as ``name``."""
    image_id = k("import", str(busybox_tar), name).out.strip()
    svc = k.service()
    try:
        return image_id, svc.resolve(name).manifest_digest
    finally:
        svc.close()


def recorded(k: Kobako, name: str) -> tuple[str, str, list[str]]:
    """(image ID, manifest digest, layer digests) as the store records ``name``."""
    svc = k.service()
    try:
        image = svc.resolve(name)
        return image.id, image.manifest_digest, [layer["digest"] for layer in image.layers]
    finally:
        svc.close()


def test_push_pull_round_trip(servers: Callable[..., Server], kobako_factory, busybox_tar: Path) -> None:  # type: ignore[no-untyped-def]
    server = servers()
    ref = f"{server.addr}/test/busybox:1"
    src, dst = kobako_factory("src"), kobako_factory("dst")
    image_id, manifest_digest = imported(src, busybox_tar, ref)
    out = src("push", ref).out
    assert f"1: digest: {manifest_digest} size: " in out
    served = httpx.get(f"http://{server.addr}/v2/test/busybox/manifests/1",
                       headers={"accept": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
    assert served.headers["docker-content-digest"] == manifest_digest
    pulled = dst("pull", ref)
    assert pulled.out.strip().endswith(ref)
    assert f"Digest: {manifest_digest}" in pulled.out
    assert recorded(dst, ref)[:2] == (image_id, manifest_digest)
    assert recorded(dst, ref)[2] == recorded(src, ref)[2]
    again = dst("pull", "-q", ref)
    assert again.out == f"{ref}\n"
    by_digest = dst("pull", f"{server.addr}/test/busybox@{manifest_digest}")
    assert "Image is up to date" in by_digest.out
    catalog = httpx.get(f"http://{server.addr}/v2/_catalog").json()
    assert catalog == {"repositories": ["test/busybox"]}


def test_interrupted_pull_resumes(servers: Callable[..., Server], kobako_factory, busybox_tar: Path) -> None:  # type: ignore[no-untyped-def]
    server = servers()
    src = kobako_factory("src")
    _image_id, manifest_digest = imported(src, busybox_tar, f"{server.addr}/bb:1")
    src("push", f"{server.addr}/bb:1")
    proxy = CuttingProxy(server.port, cut_after=700_000)
    try:
        dst = kobako_factory("dst")
        dst("pull", f"127.0.0.1:{proxy.port}/bb:1")
        assert proxy.cuts == 1
        resumed = [r for r in proxy.ranges() if r.startswith("bytes=")]
        assert len(resumed) == 1
        offset = int(resumed[0][len("bytes=") : -1])
        assert 500_000 < offset <= 700_000  # it went on from what it had, not from 0
        assert recorded(dst, f"127.0.0.1:{proxy.port}/bb:1")[1] == manifest_digest
    finally:
        proxy.close()


def test_killed_pull_resumes_in_a_later_process(servers: Callable[..., Server], kobako_factory,
                                                busybox_tar: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    server = servers()
    src = kobako_factory("src")
    imported(src, busybox_tar, f"{server.addr}/bb:1")
    src("push", f"{server.addr}/bb:1")
    proxy = CuttingProxy(server.port, cut_after=150_000, cut_once=False)  # every connection dies
    try:
        dst = kobako_factory("dst")
        ref = f"127.0.0.1:{proxy.port}/bb:1"
        failed = dst("pull", ref, check=False)
        assert failed.returncode != 0 and "transfer failed" in failed.err
        svc = dst.service()
        try:
            partial = [s for s in svc.content.statuses() if s.ref.startswith("pull-")]
        finally:
            svc.close()
        assert partial and partial[0].offset > 0
        proxy.cut_after = None
        before = len(proxy.ranges())
        dst("pull", ref)
        first = proxy.ranges()[before]
        assert first.startswith("bytes=") and int(first[6:-1]) > 0
    finally:
        proxy.close()


def test_corrupted_blob_refused(servers: Callable[..., Server], kobako_factory, busybox_tar: Path) -> None:  # type: ignore[no-untyped-def]
    server = servers()
    src = kobako_factory("src")
    imported(src, busybox_tar, f"{server.addr}/bb:1")
    src("push", f"{server.addr}/bb:1")
    layer = recorded(src, f"{server.addr}/bb:1")[2][0]
    blob = server.root / "content" / "blobs" / "sha256" / layer.split(":")[1]
    blob.chmod(0o644)
    with open(blob, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    dst = kobako_factory("dst")
    failed = dst("pull", f"{server.addr}/bb:1", check=False)
    assert failed.returncode != 0 and "corrupt" in failed.err and "digest mismatch" in failed.err
    svc = dst.service()
    try:
        assert not svc.has_blob(layer)
        assert svc.list_images() == []
    finally:
        svc.close()


def test_upload_survives_server_restart(servers: Callable[..., Server], tmp_path: Path) -> None:
    server = servers()
    data = os.urandom(3 << 20)
    base = f"http://{server.addr}"
    with httpx.Client() as c:
        location = c.post(f"{base}/v2/up/blobs/uploads/").headers["location"]
        r = c.patch(base + location, content=data[: 1 << 20], headers={"content-range": f"0-{(1 << 20) - 1}"})
        assert r.status_code == 202
    server.stop()
    server.start()
    with httpx.Client() as c:
        status = c.get(base + location)
        assert status.status_code == 204 and status.headers["range"] == f"0-{(1 << 20) - 1}"
        r = c.patch(base + location, content=data[1 << 20 :],
                    headers={"content-range": f"{1 << 20}-{len(data) - 1}"})  # fmt: skip
        assert r.status_code == 202
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert c.put(f"{base}{location}?digest={digest}").status_code == 201
        assert c.get(f"{base}/v2/up/blobs/{digest}").content == data


def test_registry_gc_cli(servers: Callable[..., Server], kobako_factory, busybox_tar: Path) -> None:  # type: ignore[no-untyped-def]
    server = servers()
    src = kobako_factory("src")
    _image_id, manifest_digest = imported(src, busybox_tar, f"{server.addr}/bb:1")
    src("push", f"{server.addr}/bb:1")
    r = httpx.delete(f"http://{server.addr}/v2/bb/manifests/{manifest_digest}")
    assert r.status_code == 202
    server.stop()
    dry = src("registry", "gc", "--root", str(server.root), "--grace", "0", "--dry-run")
    assert "would remove 3 blobs" in dry.out
    done = src("registry", "gc", "--root", str(server.root), "--grace", "0")
    assert "removed 3 blobs" in done.out
    assert list((server.root / "content" / "blobs" / "sha256").iterdir()) == []


def test_cli_errors(servers: Callable[..., Server], kobako_factory) -> None:  # type: ignore[no-untyped-def]
    server = servers()
    k = kobako_factory("k")
    bad = k("pull", "127.0.0.1:1/a//b", check=False)  # never a name that would need DNS
    assert bad.returncode == 125 and "invalid reference" in bad.err
    missing = k("pull", f"{server.addr}/nope:1", check=False)
    assert missing.returncode != 0 and "NAME_UNKNOWN" in missing.err
    unreachable = k("pull", f"127.0.0.1:{_closed_port()}/x:1", check=False)
    assert unreachable.returncode != 0 and "cannot reach registry" in unreachable.err
    no_image = k("push", f"{server.addr}/nothing:1", check=False)
    assert no_image.returncode != 0 and "no such image" in no_image.err
    assert "usage: kobako pull" in k("pull", "--help").out


def _closed_port() -> int:
    from _regserver import free_port

    return free_port()


def test_manifest_json_is_served_as_pushed(
    servers: Callable[..., Server], kobako_factory, busybox_tar: Path
) -> None:  # type: ignore[no-untyped-def]
    server = servers()
    src = kobako_factory("src")
    imported(src, busybox_tar, f"{server.addr}/bb:1")
    src("push", f"{server.addr}/bb:1")
    svc = src.service()
    try:
        local = svc.read_blob(svc.resolve(f"{server.addr}/bb:1").manifest_digest)
    finally:
        svc.close()
    served = httpx.get(f"http://{server.addr}/v2/bb/manifests/1").content
    assert served == local and json.loads(served)["schemaVersion"] == 2

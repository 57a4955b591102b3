"""kobako's registry and client with their peers, digests compared at every hop:

- skopeo pushes into kobako's registry (from an ``oci:`` layout and a ``docker-archive:`` that ``kobako save``
  wrote) and pulls out of it;
- podman pulls from kobako's registry and runs the image; podman pushes into it and kobako pulls that back;
- kobako pushes to and pulls from Debian's docker-registry.

Busybox images come from ``kobako import`` of a busybox rootfs tar. Every server is terminated and waited
for, podman's storage is removed (kobako.testing.podman), temporary dirs belong to pytest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kobako.testing.podman import Podman

pytestmark = [pytest.mark.root, pytest.mark.interop]

KOBAKO = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kobako")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


class Kobako:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "KOBAKO_ROOT": str(root), "HOME": str(root / "home")}
        self.env.pop("REGISTRY_AUTH_FILE", None)
        self.env.pop("KOBAKO_REGISTRIES_CONF", None)

    def __call__(self, *args: str) -> str:
        return run(KOBAKO, *args, env=self.env)

    def manifest_digest(self, ref: str) -> str:
        from kobako.images.service import ImageService

        svc = ImageService(str(self.root))
        try:
            return svc.resolve(ref).manifest_digest
        finally:
            svc.close()

    def image_id(self, ref: str) -> str:
        return json.loads(self("image", "inspect", ref))[0]["Id"]


@pytest.fixture
def kobako_registry(tmp_path: Path) -> Iterator[str]:
    """``kobako registry serve`` on a free loopback port; its address."""
    port = free_port()
    proc = subprocess.Popen([KOBAKO, "registry", "serve", "--addr", f"127.0.0.1:{port}",
                             "--root", str(tmp_path / "kobako-registry")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture
def docker_registry(tmp_path: Path) -> Iterator[str]:
    """Debian's distribution registry on a free loopback port, storage in tmp; its address."""
    _need("docker-registry")
    port = free_port()
    config = tmp_path / "docker-registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'docker-registry-storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: kobako-interop-test\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture
def busybox(tmp_path: Path, busybox_rootfs: Path) -> Kobako:
    """A kobako state root holding ``localhost/interop/busybox:1``, imported from a busybox rootfs tar."""
    archive = tmp_path / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(str(busybox_rootfs), arcname=".")
    k = Kobako(tmp_path / "kobako-src")
    k("import", "--change", 'CMD ["sh"]', str(archive), "localhost/interop/busybox:1")
    return k


@pytest.fixture
def podman() -> Iterator[Podman]:
    _need("podman", "conmon", "runc")
    # podman refuses a run root longer than 50 characters: pytest's tmp paths are too long
    pm = Podman(Path(tempfile.mkdtemp(prefix="kreg-pm-")))
    try:
        yield pm
    finally:
        left = pm.close()
    assert not left, f"left behind by podman: {left}"


def served_digest(addr: str, repo: str, tag: str) -> str:
    import httpx

    accept = ", ".join([OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"])
    r = httpx.get(f"http://{addr}/v2/{repo}/manifests/{tag}", headers={"accept": accept}, trust_env=False)
    assert r.status_code == 200, r.text
    import hashlib

    digest = "sha256:" + hashlib.sha256(r.content).hexdigest()
    assert r.headers.get("docker-content-digest", digest) == digest
    return digest


def test_skopeo_pushes_oci_layout_into_kobako_registry(
    kobako_registry: str, busybox: Kobako, tmp_path: Path
) -> None:
    _need("skopeo")
    local = busybox.manifest_digest("localhost/interop/busybox:1")
    archive = tmp_path / "oci.tar"
    busybox("save", "--format", "oci-archive", "-o", str(archive), "localhost/interop/busybox:1")
    layout = tmp_path / "layout"
    layout.mkdir()
    run("tar", "-C", str(layout), "-xf", str(archive))  # kobako's own archive: no hostile members
    run("skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout}",
        f"docker://{kobako_registry}/skopeo/oci:1")  # fmt: skip
    assert served_digest(kobako_registry, "skopeo/oci", "1") == local
    dst = Kobako(tmp_path / "kobako-dst")
    dst("pull", f"{kobako_registry}/skopeo/oci:1")
    assert dst.manifest_digest(f"{kobako_registry}/skopeo/oci:1") == local
    assert dst.image_id(f"{kobako_registry}/skopeo/oci:1") == busybox.image_id("localhost/interop/busybox:1")


def test_skopeo_pushes_docker_archive_into_kobako_registry(kobako_registry: str, busybox: Kobako,
                                                           tmp_path: Path) -> None:  # fmt: skip
    _need("skopeo")
    archive = tmp_path / "docker.tar"
    busybox("save", "-o", str(archive), "localhost/interop/busybox:1")
    run("skopeo", "copy", "--dest-tls-verify=false", f"docker-archive:{archive}",
        f"docker://{kobako_registry}/skopeo/docker:1")  # fmt: skip
    raw = run(
        "skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{kobako_registry}/skopeo/docker:1"
    )
    pushed = served_digest(kobako_registry, "skopeo/docker", "1")
    import hashlib

    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == pushed
    dst = Kobako(tmp_path / "kobako-dst")
    dst("pull", f"{kobako_registry}/skopeo/docker:1")
    assert dst.manifest_digest(f"{kobako_registry}/skopeo/docker:1") == pushed
    # a docker-archive carries no manifest, so skopeo wrote a new one: the image itself is the same
    assert dst.image_id(f"{kobako_registry}/skopeo/docker:1") == busybox.image_id(
        "localhost/interop/busybox:1"
    )


def test_skopeo_pulls_from_kobako_registry(kobako_registry: str, busybox: Kobako, tmp_path: Path) -> None:
    _need("skopeo")
    local = busybox.manifest_digest("localhost/interop/busybox:1")
    ref = f"{kobako_registry}/interop/busybox:1"
    busybox("tag", "localhost/interop/busybox:1", ref)
    busybox("push", ref)
    layout = tmp_path / "pulled"
    run(
        "skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:x"
    )
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == local
    manifest = json.loads((layout / "blobs" / "sha256" / local.split(":")[1]).read_text())
    for layer in manifest["layers"]:
        assert (layout / "blobs" / "sha256" / layer["digest"].split(":")[1]).stat().st_size == layer["size"]


def test_podman_pulls_from_kobako_registry_and_runs(kobako_registry: str, busybox: Kobako,
                                                    podman: Podman) -> None:  # fmt: skip
    local = busybox.manifest_digest("localhost/interop/busybox:1")
    ref = f"{kobako_registry}/interop/busybox:1"
    busybox("tag", "localhost/interop/busybox:1", ref)
    busybox("push", ref)
    podman("pull", "--tls-verify=false", ref, timeout=180)
    digest, image_id = podman("image", "inspect", "--format", "{{.Digest}} {{.Id}}", ref).stdout.split()
    assert digest == local
    assert "sha256:" + image_id == busybox.image_id("localhost/interop/busybox:1")
    out = podman("run", "--rm", "--runtime", "runc", *podman.run_flags(), ref, "echo", "hi", timeout=180)
    assert out.stdout == "hi\n"


def test_podman_pushes_into_kobako_registry(kobako_registry: str, busybox: Kobako, podman: Podman,
                                            tmp_path: Path) -> None:  # fmt: skip
    archive = tmp_path / "oci.tar"
    busybox("save", "--format", "oci-archive", "-o", str(archive), "localhost/interop/busybox:1")
    podman("load", "-i", str(archive), timeout=180)
    ref = f"{kobako_registry}/podman/busybox:1"
    podman("push", "--tls-verify=false", "localhost/interop/busybox:1", ref, timeout=180)
    pushed = served_digest(kobako_registry, "podman/busybox", "1")
    dst = Kobako(tmp_path / "kobako-dst")
    dst("pull", ref)
    assert dst.manifest_digest(ref) == pushed
    assert dst.image_id(ref) == busybox.image_id("localhost/interop/busybox:1")


def test_kobako_pushes_to_and_pulls_from_docker_registry(docker_registry: str, busybox: Kobako,
                                                         tmp_path: Path) -> None:  # fmt: skip
    local = busybox.manifest_digest("localhost/interop/busybox:1")
    ref = f"{docker_registry}/interop/busybox:1"
    busybox("tag", "localhost/interop/busybox:1", ref)
    out = busybox("push", ref)
    assert f"digest: {local}" in out
    assert served_digest(docker_registry, "interop/busybox", "1") == local
    busybox("tag", "localhost/interop/busybox:1", f"{docker_registry}/other/busybox:2")
    mounted = busybox("push", f"{docker_registry}/other/busybox:2")
    assert "Mounted from interop/busybox" in mounted  # cross-repository mount on distribution too
    dst = Kobako(tmp_path / "kobako-dst")
    dst("pull", ref)
    assert dst.manifest_digest(ref) == local
    assert dst.image_id(ref) == busybox.image_id("localhost/interop/busybox:1")
    if shutil.which("skopeo"):
        raw = run("skopeo", "inspect", "--format", "{{.Digest}}", "--tls-verify=false", f"docker://{ref}")
        assert raw.strip() == local

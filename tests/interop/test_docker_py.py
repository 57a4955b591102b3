"""docker-py (the `docker` package from PyPI) against `kobako system service`: each call users make."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kobako.testing.api_service import ApiService, local_registry

docker = pytest.importorskip("docker", reason="docker-py is not installed (pip install docker)")
KOBAKO = str(Path(sys.executable).parent / "kobako")
pytestmark = pytest.mark.root


class Service(ApiService):
    def __init__(self, base: Path, rootfs: Path) -> None:
        super().__init__(base, rootfs)
        self.client = docker.DockerClient(base_url=f"unix://{self.sock}", timeout=60)

    def remove_all(self) -> None:
        for c in self.client.containers.list(all=True):
            c.remove(force=True)

    def stop(self) -> list[str]:
        self.remove_all()
        self.client.close()
        self.terminate()
        return self.mounts_left()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[Service]:
    svc = Service(tmp_path_factory.mktemp("docker-py"), busybox_rootfs)
    yield svc
    assert svc.stop() == []


@pytest.fixture
def client(service: Service) -> Iterator[object]:
    yield service.client
    service.remove_all()


def test_version_negotiates(client) -> None:
    assert client.version()["ApiVersion"] == "1.45"
    assert client.ping() is True


def test_containers_run_returns_output(client) -> None:
    assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"
    assert client.containers.list(all=True) == []


def test_containers_run_failure_raises_container_error(client) -> None:
    with pytest.raises(docker.errors.ContainerError) as info:
        client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
    assert info.value.exit_status == 3


def test_containers_run_detached_list_get(client) -> None:
    c = client.containers.run("busybox", ["sleep", "100"], detach=True, name="pyweb", labels={"team": "a"})
    assert [x.name for x in client.containers.list()] == ["pyweb"]
    assert [x.id for x in client.containers.list(filters={"label": "team=a"})] == [c.id]
    got = client.containers.get("pyweb")
    assert got.id == c.id and got.status == "running"
    assert got.labels == {"team": "a"}


def test_containers_logs(client) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], detach=True)
    assert c.wait()["StatusCode"] == 0
    assert c.logs() == b"out\nerr\n"
    assert c.logs(stderr=False) == b"out\n"
    assert list(c.logs(stream=True, follow=True)) == [b"out\n", b"err\n"]


def test_exec_run(client) -> None:
    c = client.containers.run("busybox", ["sleep", "100"], detach=True)
    result = c.exec_run(["sh", "-c", "echo hi; exit 4"])
    assert (result.exit_code, result.output) == (4, b"hi\n")
    out, err = c.exec_run(["sh", "-c", "echo a; echo b >&2"], demux=True).output
    assert (out, err) == (b"a\n", b"b\n")
    assert c.exec_run(["id", "-u"], user="nobody").output == b"65534\n"
    assert c.exec_run("pwd", workdir="/tmp").output == b"/tmp\n"


def test_remove(client) -> None:
    c = client.containers.run("busybox", ["sleep", "100"], detach=True)
    with pytest.raises(docker.errors.APIError) as info:
        c.remove()
    assert info.value.status_code == 409
    c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_images_list(client) -> None:
    tags = [t for image in client.images.list() for t in image.tags]
    assert "busybox:latest" in tags
    assert client.images.get("busybox").id.startswith("sha256:")


def test_images_build(client, service: Service) -> None:
    ctx = service.base / "pyctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text('FROM busybox\nRUN echo made > /made\nCMD ["cat", "/made"]\n')
    image, logs = client.images.build(path=str(ctx), tag="pybuilt:1")
    assert "pybuilt:1" in image.tags
    assert any("Successfully built" in chunk.get("stream", "") for chunk in logs)
    assert client.containers.run("pybuilt:1", remove=True) == b"made\n"
    with pytest.raises(docker.errors.BuildError):
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 7\n")
        client.images.build(path=str(ctx), tag="pybroken:1")
    client.images.remove("pybuilt:1")


def test_images_pull(client, service: Service) -> None:
    with local_registry(service.base / "registry", service.env) as port:
        repo = f"127.0.0.1:{port}/py/box"
        client.images.get("busybox").tag(repo, "2")
        for _ in client.images.push(repo, tag="2", stream=True, decode=True):
            pass
        client.images.remove(f"{repo}:2")
        pulled = client.images.pull(repo, tag="2")
        assert f"{repo}:2" in pulled.tags
        client.images.remove(f"{repo}:2")

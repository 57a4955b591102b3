"""Peer OCI runtimes (runc, crun) for differential tests, each probed once: skipped with the reason when
it is missing or cannot run a container on this host (crun refuses hybrid cgroup v1/v2 hosts)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kobako.testing.runtime_cli import Runtime, unique

PEERS = ["runc", "crun"]


class PeerRuntime(Runtime):
    """A peer runtime's CLI with its own --root; ``name`` is "runc" or "crun"."""

    def __init__(self, name: str, root: Path, binary: str) -> None:
        super().__init__(root, binary)
        self.name = name


def _probe(name: str, base: Path, rootfs: Path) -> tuple[str, str]:
    """(binary, "") when ``name run`` of a trivial bundle works, else ("", why not)."""
    from kobako.testing.busybox import write_bundle

    binary = shutil.which(name)
    if binary is None:
        return "", f"{name} is not installed"
    bundle = base / "bundle"
    write_bundle(str(bundle), rootfs_src=str(rootfs), args=["true"])
    peer = Runtime(base / "state", binary)
    try:
        proc = peer("run", "--bundle", str(bundle), unique("probe"), check=False, timeout=30)
    finally:
        peer.cleanup()
    if proc.returncode != 0:
        return "", f"{name} cannot run a container on this host: {proc.stderr.strip()}"
    return binary, ""


@pytest.fixture(scope="session")
def peer_binary(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Callable[[str], str]:
    """``peer_binary("crun")``: the peer's path, or pytest.skip with the reason it cannot be used."""
    found: dict[str, tuple[str, str]] = {}

    def get(name: str) -> str:
        if name not in found:
            found[name] = _probe(name, tmp_path_factory.mktemp(f"probe-{name}"), busybox_rootfs)
        binary, reason = found[name]
        if reason:
            pytest.skip(reason)
        return binary

    return get


@pytest.fixture(params=PEERS)
def peer(
    request: pytest.FixtureRequest, tmp_path: Path, peer_binary: Callable[[str], str]
) -> Iterator[PeerRuntime]:
    """runc, then crun, each with its own --root in tmp_path."""
    rt = PeerRuntime(request.param, tmp_path / f"{request.param}-state", peer_binary(request.param))
    yield rt
    rt.cleanup()

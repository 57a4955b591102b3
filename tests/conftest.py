"""Shared fixtures: root checks, a busybox rootfs built once per session, runtime CLI and bundles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

IS_ROOT = os.geteuid() == 0
# kobako's default network is the bridge; tests that want networking ask for it inside a network
# namespace they made themselves. Every kobako process a test starts inherits this.
os.environ.setdefault("KOBAKO_DEFAULT_NETWORK", "none")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_root = pytest.mark.skip(reason="needs root and the real kernel")
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(skip_root)


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kobako.testing.busybox import make_rootfs

    return Path(make_rootfs(str(tmp_path_factory.mktemp("busybox") / "rootfs")))


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Path:
    """The busybox rootfs as a tar, for `kobako import`."""
    import tarfile

    path = tmp_path_factory.mktemp("image") / "busybox.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(str(busybox_rootfs), arcname=".")
    return path


@pytest.fixture
def runtime(tmp_path: Path):  # type: ignore[no-untyped-def]
    from kobako.testing.runtime_cli import Runtime

    rt = Runtime(tmp_path / "state")
    yield rt
    rt.cleanup()


class BundleFactory:
    """``make_bundle(args, edit=fn)``: a fresh bundle whose spec ``fn`` may change before it is saved."""

    def __init__(self, base: Path, rootfs: Path) -> None:
        self.base = base
        self.rootfs = rootfs

    def __call__(self, args: list[str] | None = None, edit=None) -> Path:  # type: ignore[no-untyped-def]
        from kobako.testing.busybox import save_spec, write_bundle
        from kobako.testing.runtime_cli import unique

        bundle = self.base / unique("bundle")
        spec = write_bundle(str(bundle), rootfs_src=str(self.rootfs), args=args or ["true"])
        if edit is not None:
            edit(spec)
            save_spec(str(bundle), spec)
        return bundle


@pytest.fixture
def make_bundle(tmp_path: Path, busybox_rootfs: Path) -> BundleFactory:
    return BundleFactory(tmp_path, busybox_rootfs)


@pytest.fixture(scope="session", autouse=True)
def _remove_empty_cgroup_parents():  # type: ignore[no-untyped-def]
    """The runtime leaves the shared `kobako` parent cgroups in place (as runc leaves its parents);
    at the end of the session remove them where no container is left in them."""
    yield
    if not IS_ROOT:
        return
    for parent in Path("/sys/fs/cgroup").glob("*/kobako"):
        try:
            parent.rmdir()
        except OSError:
            pass  # still in use: a leftover child cgroup is a leak the before-stop check reports

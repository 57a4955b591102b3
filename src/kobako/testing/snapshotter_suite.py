"""The shared conformance suite for snapshotters, with real mounts (needs root).

Every check is ``check(factory, work)``: ``factory(root)`` builds a snapshotter on an empty directory (and must be
importable as ``module:qualname`` for the multi-process check); ``work`` is an empty scratch directory. The checks
mount exactly what ``mounts()`` returns, write through the mount, commit, and look at the layering from fresh
views; every mount is undone even when a check fails. A conformance test parametrizes over :data:`CHECKS`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from kobako.errors import AlreadyExists, FailedPrecondition, NotFound
from kobako.mount import Mount, mount_all, mounted_under, unmount_all
from kobako.snapshots.base import Kind, Snapshotter

Factory = Callable[[str], Snapshotter]


@contextlib.contextmanager
def mounted(mounts: list[Mount], target: Path) -> Iterator[Path]:
    """Mount ``mounts`` on ``target`` for the duration of the block; always unmount."""
    target.mkdir(parents=True, exist_ok=True)
    mount_all(mounts, target)
    try:
        yield target
    finally:
        unmount_all(target, detach=True)
        assert not mounted_under(target), f"mounts left under {target}"


def _fill(snap: Snapshotter, key: str, parent: str, work: Path, change: Callable[[Path], None]) -> None:
    """prepare → mount → change → unmount → commit as ``key.upper()``."""
    with mounted(snap.prepare(key, parent), work / "mnt") as root:
        change(root)
    snap.commit(key.upper(), key)


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> short description of every object below ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "-> " + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = p.read_text(errors="replace")
            else:
                out[rel] = stat.filemode(st.st_mode)[0]
    return out


def _view_tree(snap: Snapshotter, parent: str, work: Path) -> dict[str, str]:
    key = f"view-of-{parent}"
    try:
        with mounted(snap.view(key, parent), work / "view") as root:
            return _tree(root)
    finally:
        snap.remove(key)


def check_prepare_write_commit_view(factory: Factory, work: Path) -> None:
    snap = factory(str(work / "root"))

    def base(root: Path) -> None:
        (root / "etc").mkdir()
        (root / "etc/hostname").write_text("box")
        (root / "bin").mkdir(mode=0o755)
        (root / "bin/tool").write_text("#!/bin/sh\n")
        os.chown(root / "bin/tool", 0, 12)  # before chmod: chown clears setuid
        os.chmod(root / "bin/tool", 0o4755)
        os.symlink("/etc/hostname", root / "link")
        os.link(root / "etc/hostname", root / "hard")
        os.mkfifo(root / "fifo")
        os.setxattr(root / "etc/hostname", "user.kobako", b"1")

    _fill(snap, "a", "", work, base)
    assert snap.stat("A").kind == Kind.COMMITTED
    with mounted(snap.view("v", "A"), work / "view") as root:
        assert (root / "etc/hostname").read_text() == "box"
        st = (root / "bin/tool").lstat()
        assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_gid == 12
        assert os.readlink(root / "link") == "/etc/hostname"
        assert (root / "hard").stat().st_ino == (root / "etc/hostname").stat().st_ino
        assert stat.S_ISFIFO((root / "fifo").lstat().st_mode)
        assert os.getxattr(root / "etc/hostname", "user.kobako") == b"1"
        try:
            (root / "new").write_text("x")
            raise AssertionError("a view was writable")
        except OSError as exc:
            assert exc.errno == errno.EROFS
    assert snap.stat("v").kind == Kind.VIEW and snap.stat("v").parent == "A"


def check_layering_whiteouts_and_opaque_dirs(factory: Factory, work: Path) -> None:
    snap = factory(str(work / "root"))

    def one(root: Path) -> None:
        for name in ("keep", "change", "drop"):
            (root / name).write_text(name)
        (root / "dir").mkdir()
        (root / "dir/x").write_text("x")
        (root / "dir/y").write_text("y")
        (root / "gone").mkdir()
        (root / "gone/deep").write_text("deep")

    def two(root: Path) -> None:
        (root / "drop").unlink()
        (root / "change").write_text("changed")
        (root / "dir/x").unlink()
        (root / "added").write_text("added")
        for p in sorted((root / "gone").iterdir()):
            p.unlink()
        (root / "gone").rmdir()

    def three(root: Path) -> None:
        for p in sorted((root / "dir").iterdir()):
            p.unlink()
        (root / "dir").rmdir()
        (root / "dir").mkdir()  # a new directory: nothing from below may show through
        (root / "dir/z").write_text("z")
        (root / "gone").mkdir()  # recreated after a whiteout

    _fill(snap, "one", "", work, one)
    _fill(snap, "two", "ONE", work, two)
    _fill(snap, "three", "TWO", work, three)
    assert _view_tree(snap, "ONE", work) == {
        "keep": "keep", "change": "change", "drop": "drop", "dir": "d", "dir/x": "x", "dir/y": "y",
        "gone": "d", "gone/deep": "deep",
    }  # fmt: skip
    assert _view_tree(snap, "TWO", work) == {
        "keep": "keep",
        "change": "changed",
        "dir": "d",
        "dir/y": "y",
        "added": "added",
    }
    assert _view_tree(snap, "THREE", work) == {
        "keep": "keep", "change": "changed", "dir": "d", "dir/z": "z", "added": "added", "gone": "d",
    }  # fmt: skip


def check_active_snapshot_sees_parent_and_is_private(factory: Factory, work: Path) -> None:
    snap = factory(str(work / "root"))
    _fill(snap, "base", "", work, lambda r: (r / "f").write_text("base"))
    m1, m2 = snap.prepare("c1", "BASE"), snap.prepare("c2", "BASE")
    assert snap.mounts("c1") == m1
    with mounted(m1, work / "m1") as r1, mounted(m2, work / "m2") as r2:
        assert (r1 / "f").read_text() == "base" == (r2 / "f").read_text()
        (r1 / "f").write_text("mine")
        (r1 / "only1").write_text("1")
        assert (r2 / "f").read_text() == "base" and not (r2 / "only1").exists()
    assert _view_tree(snap, "BASE", work) == {"f": "base"}


def check_metadata_and_errors(factory: Factory, work: Path) -> None:
    snap = factory(str(work / "root"))
    snap.prepare("a", labels={"l1": "v1"})
    info = snap.stat("a")
    assert (info.kind, info.parent, dict(info.labels)) == (Kind.ACTIVE, "", {"l1": "v1"})
    assert dict(snap.update("a", {"l1": None, "l2": "v2"}).labels) == {"l2": "v2"}
    _raises(AlreadyExists, snap.prepare, "a")
    _raises(NotFound, snap.prepare, "b", "missing")
    _raises(FailedPrecondition, snap.prepare, "b", "a")  # parent must be committed
    _raises(NotFound, snap.stat, "missing")
    _raises(NotFound, snap.mounts, "missing")
    _raises(NotFound, snap.remove, "missing")
    snap.commit("A", "a", labels={"l3": "v3"})
    assert dict(snap.stat("A").labels) == {"l2": "v2", "l3": "v3"}
    _raises(NotFound, snap.stat, "a")
    _raises(FailedPrecondition, snap.commit, "AA", "A")  # only active snapshots commit
    _raises(FailedPrecondition, snap.mounts, "A")
    snap.view("v", "A")
    _raises(FailedPrecondition, snap.commit, "V", "v")
    snap.prepare("b", "A")
    _raises(AlreadyExists, snap.commit, "A", "b")
    _raises(FailedPrecondition, snap.remove, "A")  # has children
    assert {i.key: i.kind for i in snap.walk()} == {"A": Kind.COMMITTED, "v": Kind.VIEW, "b": Kind.ACTIVE}
    assert [i.key for i in snap.walk(lambda i: i.parent == "A")] == ["v", "b"]


def check_remove_and_cleanup(factory: Factory, work: Path) -> None:
    snap = factory(str(work / "root"))
    _fill(snap, "a", "", work, lambda r: (r / "f").write_text("a"))
    _fill(snap, "b", "A", work, lambda r: (r / "g").write_text("b"))
    snap.view("v", "B")
    for key in ("v", "B", "A"):
        snap.remove(key)
    assert list(snap.walk()) == []
    assert snap.cleanup() == []
    snap.prepare("a")  # keys are reusable after removal
    with mounted(snap.mounts("a"), work / "mnt") as root:
        assert list(root.iterdir()) == []


def check_usage(factory: Factory, work: Path) -> None:
    snap = factory(str(work / "root"))
    with mounted(snap.prepare("a"), work / "mnt") as root:
        (root / "big").write_bytes(os.urandom(1 << 20))
        (root / "d").mkdir()
    usage = snap.usage("a")
    assert usage.size >= 1 << 20 and usage.inodes >= 3, usage


def check_deep_chain(factory: Factory, work: Path) -> None:
    """Many layers under a long root path: overlay options exceed a page and must still mount."""
    deep = work / ("r" * 200)
    snap = factory(str(deep))
    parent = ""
    for i in range(40):
        key = f"l{i:03d}"
        _fill(snap, key, parent, work, lambda r, i=i: (r / f"f{i:03d}").write_text(str(i)))
        parent = key.upper()
    tree = _view_tree(snap, parent, work)
    assert tree == {f"f{i:03d}": str(i) for i in range(40)}
    with mounted(snap.prepare("top", parent), work / "mnt") as root:
        (root / "f000").unlink()
        assert len(list(root.iterdir())) == 39


def check_concurrent_processes(factory: Factory, work: Path) -> None:
    root = work / "root"
    snap = factory(str(root))
    _fill(snap, "base", "", work, lambda r: (r / "f").write_text("base"))
    module, name = factory.__module__, factory.__qualname__
    code = (
        "import importlib, sys\n"
        f"s = getattr(importlib.import_module({module!r}), {name!r})({str(root)!r})\n"
        "for i in range(10):\n"
        "    k = f'p{sys.argv[1]}-{i}'\n"
        "    s.prepare(k, 'BASE')\n"
        "    s.commit(k.upper(), k) if i % 2 else s.remove(k)\n"
        "print('ok')\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip() == b"ok", err.decode()
    keys = {i.key for i in snap.walk()}
    assert keys == {"BASE"} | {f"P{n}-{i}" for n in range(4) for i in range(1, 10, 2)}
    assert snap.cleanup() == []


def _raises(exc: type[BaseException], fn: Callable[..., object], *args: object, **kwargs: object) -> None:
    try:
        fn(*args, **kwargs)
    except exc:
        return
    raise AssertionError(f"{getattr(fn, '__name__', fn)}{args!r} did not raise {exc.__name__}")


CHECKS: list[Callable[[Factory, Path], None]] = [
    check_prepare_write_commit_view,
    check_layering_whiteouts_and_opaque_dirs,
    check_active_snapshot_sees_parent_and_is_private,
    check_metadata_and_errors,
    check_remove_and_cleanup,
    check_usage,
    check_deep_chain,
    check_concurrent_processes,
]

"""Persistent network namespaces: one per container, a bind mount of an nsfs file at a path we own.

``create(path)`` makes a new namespace and keeps it alive by bind-mounting it onto ``path`` (what ``ip netns
add`` does, without needing ``ip``); the runtime joins it through the spec's ``linux.namespaces`` path.
``remove(path)`` unmounts and unlinks it: the kernel frees the namespace (and the veth ends inside it)
once no process and no mount holds it.

Namespaces are switched in a short-lived *thread*, never in the calling thread: setns/unshare of a network
namespace affect only the thread that calls them, so the caller can never be left in the wrong namespace
(and no fork is paid). That thread does what must happen inside the namespace: open a netlink socket
there (a socket stays bound to the namespace it was made in), write per-namespace sysctls.

Copies of these mounts: a process that unshares its mount namespace gets copies of every netns mount; the
runtime drops them at pivot_root, other tools (``ip netns exec``) hold theirs until they exit.
"""

from __future__ import annotations

import os

from kobako.errors import KobakoError, NotFound, from_oserror

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MNT_DETACH = 2
_NSFS_DEV: int | None = None


def _syscalls() -> Any:
    from kobako.runtime.syscalls import linux

    return linux


def _in_thread(target: Callable[[], T]) -> T:
    """Run ``target`` in a fresh thread and hand back its result or exception (the caller never moves)."""
    import threading  # here: a removal (`kobako rm`) needs no thread, and threading costs ~5 ms to import

    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["value"] = target()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=body, name="kobako-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def create(path: str, inside: Callable[[], T] | None = None) -> T | None:
    """Make a new network namespace bound at ``path`` (which must not exist); run ``inside`` in it.

    On any failure nothing is left at ``path``."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    except OSError as exc:
        raise from_oserror(exc, f"create network namespace file {path}") from exc

    def body() -> T | None:
        sc = _syscalls()
        sc.unshare(CLONE_NEWNET)
        sc.mount("/proc/thread-self/ns/net", path, None, _MS_BIND, None)
        return inside() if inside is not None else None

    try:
        return _in_thread(body)
    except BaseException as exc:
        try:
            remove(path)
        except KobakoError as cleanup:
            if isinstance(exc, KobakoError):
                exc.add_cleanup_error(cleanup)
        if isinstance(exc, OSError):
            raise from_oserror(exc, f"create network namespace {path}") from exc
        raise


def run_in(path: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` in a thread that has joined the namespace bound at ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise from_oserror(exc, f"open network namespace {path}") from exc
    try:
        if not _is_nsfs(fd):
            raise NotFound(f"{path} is not a network namespace (not mounted)")

        def body() -> T:
            _syscalls().setns(fd, CLONE_NEWNET)
            return fn()

        return _in_thread(body)
    finally:
        os.close(fd)


def _nsfs_dev() -> int:
    global _NSFS_DEV
    if _NSFS_DEV is None:
        _NSFS_DEV = os.stat("/proc/self/ns/net").st_dev
    return _NSFS_DEV


def _is_nsfs(fd_or_path: int | str) -> bool:
    # A bound namespace file lives on nsfs; the bare placeholder file lives on the directory's filesystem.
    try:
        return os.stat(fd_or_path).st_dev == _nsfs_dev()
    except OSError:
        return False


def is_mounted(path: str) -> bool:
    return _is_nsfs(path)


def remove(path: str) -> None:
    """Unmount and unlink ``path``; a missing or never-mounted path is fine (crash leftovers)."""
    sc = _syscalls()
    while _is_nsfs(path):  # a path mounted twice (a racing create) needs two unmounts
        try:
            sc.umount2(path, _MNT_DETACH)
        except OSError as exc:
            raise from_oserror(exc, f"unmount network namespace {path}") from exc
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise from_oserror(exc, f"remove network namespace file {path}") from exc


def joined(path: str, limit: int = 4096) -> bool:
    """Whether a process (its main thread) is in the namespace bound at ``path``, e.g. a container run with
    ``--network container:ID``; also True when /proc has more than ``limit`` processes (not worth the scan:
    ~13 µs a process). Costs ~1 ms for a hundred processes."""
    try:
        ino = os.stat(path).st_ino
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return True
    if len(pids) > limit:
        return True
    for pid in pids:
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == ino:
                return True
        except OSError:
            continue  # gone meanwhile, or a kernel thread
    return False


def listdir(directory: str) -> list[str]:
    """Names of the namespace files in ``directory`` (mounted or leftover placeholders)."""
    try:
        return sorted(n for n in os.listdir(directory) if not n.startswith("."))
    except FileNotFoundError:
        return []


def write_sysctl(key: str, value: str) -> None:
    """Write ``net.x.y`` for the calling thread's namespace (/proc/sys/net follows the opener's netns)."""
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(value)

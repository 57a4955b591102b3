"""Namespaces as data: which clone flag each OCI type is, and in which order they are joined or made.

Order matters:
- user first: every namespace made after it is owned by it, and joining others may need its capabilities;
- cgroup after the process is placed in its cgroup (done by the parent before the child unshares), so the
  cgroup namespace's root is the container's own cgroup;
- pid is unshared by the intermediate process; only its child (the container init) lands in it;
- mount last among joins, since setns(mnt) changes the paths the other ``path`` entries would resolve against.
"""

from __future__ import annotations

from kobako.runtime import syscalls as sc

FLAGS = {
    "user": sc.CLONE_NEWUSER,
    "cgroup": sc.CLONE_NEWCGROUP,
    "ipc": sc.CLONE_NEWIPC,
    "uts": sc.CLONE_NEWUTS,
    "network": sc.CLONE_NEWNET,
    "pid": sc.CLONE_NEWPID,
    "time": sc.CLONE_NEWTIME,
    "mount": sc.CLONE_NEWNS,
}
ORDERED = ("user", "cgroup", "ipc", "uts", "network", "pid", "time", "mount")
PROC_NAMES = {
    "user": "user",
    "cgroup": "cgroup",
    "ipc": "ipc",
    "uts": "uts",
    "network": "net",
    "pid": "pid",
    "time": "time",
    "mount": "mnt",
}


def by_type(namespaces: list[dict]) -> dict[str, str]:
    """Map each requested namespace type to its path ("" means: make a new one)."""
    return {ns["type"]: ns.get("path", "") for ns in namespaces}


def new_flags(requested: dict[str, str], skip: tuple[str, ...] = ()) -> int:
    flags = 0
    for kind in ORDERED:
        if kind in requested and not requested[kind] and kind not in skip:
            flags |= FLAGS[kind]
    return flags


def join(
    requested: dict[str, str], kinds: tuple[str, ...] = ORDERED, syscalls: sc.LinuxSyscalls = sc.linux
) -> None:
    """setns() into every namespace given by path, in ORDERED order."""
    import os

    for kind in ORDERED:
        path = requested.get(kind)
        if not path or kind not in kinds:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise OSError(exc.errno, f"open {kind} namespace {path}: {exc.strerror}") from exc
        try:
            syscalls.setns(fd, FLAGS[kind])
        except OSError as exc:
            raise OSError(exc.errno, f"join {kind} namespace {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)

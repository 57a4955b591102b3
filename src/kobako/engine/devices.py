"""The host's device nodes, as OCI ``linux.devices`` entries, for ``--privileged`` (as Podman does).

The container still gets its own /dev tmpfs; the runtime creates these nodes in it, so a privileged
container sees the host's disks, loop devices, /dev/kvm, /dev/fuse... without sharing the host's /dev
mount (its pts, shm and mqueue stay the container's own).
"""

from __future__ import annotations

import os
import stat

# Directories that hold no host devices or that the container has its own of.
_SKIP_DIRS = frozenset(("pts", "shm", "mqueue", "fd", "hugepages", ".lxc", ".lxd-mounts", ".udev"))
# The console is the container's pty, ptmx its own devpts's (the runtime links /dev/ptmx to pts/ptmx).
_SKIP_FILES = frozenset(("/dev/console", "/dev/ptmx"))


def host_devices(root: str = "/dev") -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    _walk(root, found)
    found.sort(key=lambda d: d["path"])  # type: ignore[arg-type, return-value]
    return found


def _walk(directory: str, found: list[dict[str, object]]) -> None:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if entry.name not in _SKIP_DIRS:
                _walk(entry.path, found)
            continue
        if entry.path in _SKIP_FILES:
            continue
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            continue  # symlinks, sockets, regular files: not devices
        found.append(
            {
                "path": entry.path,
                "type": kind,
                "major": os.major(st.st_rdev),
                "minor": os.minor(st.st_rdev),
                "fileMode": stat.S_IMODE(st.st_mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
            }
        )

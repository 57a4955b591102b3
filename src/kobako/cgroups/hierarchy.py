"""Which cgroup driver this host needs, and where its hierarchies are mounted. Both answers are cached per process."""

from __future__ import annotations

import os

from kobako.cgroups.base import DEFAULT_ROOT
from kobako.errors import from_oserror

# Super options of a v1 cgroup mount that are not controller names.
_NOT_CONTROLLERS = frozenset(
    {"rw", "ro", "clone_children", "noprefix", "xattr", "favordynmods", "cpuset_v2_mode"}
)

_detected: dict[str, str] = {}
_mounts: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}


def detect(root: str = DEFAULT_ROOT) -> str:
    """ "v2" on a pure unified host, else "v1" (hybrid hosts count as v1, as in runc).

    A pure v2 host mounts cgroup2 at ``root`` itself, so the root has cgroup.controllers; on v1 and hybrid
    hosts ``root`` is a tmpfs of per-controller mounts. One stat instead of a statfs or a mountinfo scan.
    """
    found = _detected.get(root)
    if found is None:
        found = _detected[root] = "v2" if os.path.exists(root + "/cgroup.controllers") else "v1"
    return found


def mounts(root: str = DEFAULT_ROOT, mountinfo: str = "/proc/self/mountinfo") -> dict[str, tuple[str, str]]:
    """cgroup hierarchies mounted at or below ``root``: key → (mount point, mount root).

    Keys are single controller names ("cpu", "memory", "name=systemd"); co-mounted controllers ("cpu,cpuacct")
    each get a key with the same mount point. A cgroup2 mount below a v1 root (hybrid) has the key "".
    """
    cache_key = (root, mountinfo)
    found = _mounts.get(cache_key)
    if found is None:
        found = _mounts[cache_key] = _parse_mountinfo(mountinfo, root)
    return found


def _parse_mountinfo(mountinfo: str, root: str) -> dict[str, tuple[str, str]]:
    try:
        with open(mountinfo) as f:
            text = f.read()
    except OSError as exc:
        raise from_oserror(exc, f"reading {mountinfo}") from exc
    prefix = root.rstrip("/") + "/"
    out: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        # "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
        head, sep, tail = line.partition(" - ")
        if not sep:
            continue
        fstype, _, rest = tail.partition(" ")
        if fstype not in ("cgroup", "cgroup2"):
            continue
        fields = head.split(" ")
        mount_root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        if not (mount_point + "/").startswith(prefix):
            continue  # the same hierarchy bind-mounted elsewhere (a container's view, say)
        if fstype == "cgroup2":
            out.setdefault("", (mount_point, mount_root))
            continue
        for opt in rest.partition(" ")[2].split(","):
            if opt not in _NOT_CONTROLLERS and not opt.startswith(("release_agent=", "none")):
                out.setdefault(opt, (mount_point, mount_root))
    return out


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def reset_cache() -> None:
    """For tests that switch fake hosts within one process."""
    _detected.clear()
    _mounts.clear()

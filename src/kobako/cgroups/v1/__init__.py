"""cgroup v1 driver: one directory per mounted hierarchy kobako uses (plus the unified one on hybrid hosts)."""

from __future__ import annotations

import os

from kobako.cgroups.base import (
    DEFAULT_ROOT,
    join_files,
    mkdirs,
    own_cgroups,
    read_file,
    read_procs,
    rmdir_tree,
    signal_all,
    wait_until,
    write_file,
)
from kobako.cgroups.hierarchy import mounts
from kobako.errors import Conflict, FailedPrecondition, InvalidArgument, KobakoError

# Hierarchies kobako places containers in; net_cls, net_prio, perf_event, rdma and misc are left alone.
# "" is the cgroup2 mount of a hybrid host: used only for controllers v1 lacks there (hugetlb on some hosts).
CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb")
HIERARCHIES = (*CONTROLLERS, "name=systemd", "")
# Where pids()/exists() look: the hierarchies every container joins, most specific first.
_PRIMARY = ("pids", "freezer", "memory", "devices", "cpu", "name=systemd", "")


class V1Manager:
    """A container cgroup on a cgroup v1 (or hybrid) host."""

    def __init__(
        self,
        path: str,
        *,
        root: str = DEFAULT_ROOT,
        mountinfo: str = "/proc/self/mountinfo",
        proc_cgroup: str = "/proc/self/cgroup",
    ) -> None:
        hierarchies = mounts(root, mountinfo)
        resolved = _resolve(path, hierarchies, proc_cgroup)
        # key ("memory", "name=systemd", "" for hybrid unified) → this container's directory in that hierarchy
        self.dirs: dict[str, str] = {
            key: hierarchies[key][0].rstrip("/") + cg_path for key, cg_path in resolved.items()
        }
        if not self.dirs:
            raise FailedPrecondition(f"no cgroup v1 hierarchy is mounted under {root}")
        paths = set(resolved.values())
        # State stores one string: a plain path when every hierarchy agrees, else "@key:path;key:path".
        self.path = (
            paths.pop()
            if len(paths) == 1
            else "@" + ";".join(f"{key}:{cg_path}" for key, cg_path in resolved.items())
        )
        self._unique = list(dict.fromkeys(self.dirs.values()))  # co-mounted controllers share a directory
        self.unified_mount = hierarchies[""][0] if "" in hierarchies else ""  # hybrid hosts only

    # --- lifecycle --------------------------------------------------------------------------------

    def create(self) -> None:
        cpuset, unified = self.dirs.get("cpuset"), self.dirs.get("")
        for directory in self._unique:
            if directory == cpuset:
                _mkdir_cpuset(directory)
            elif directory != unified:  # the hybrid cgroup2 side is made only when hugetlb needs it
                mkdirs(directory)

    def apply(self, resources: dict) -> None:
        from kobako.cgroups.v1.resources import apply

        apply(self, resources)

    def add_task(self, pid: int) -> None:
        unified = self.dirs.get("")
        for directory in self._unique:
            if directory == unified and not os.path.isdir(directory):
                continue
            write_file(directory, "cgroup.procs", str(pid))

    def join(self) -> None:
        """Move the calling process in; it must be single-threaded (a freshly forked child is).

        A thread moving itself through the v1 ``tasks`` file skips the global cgroup lock whose first write
        waits out an RCU grace period (~10 ms): the cheapest way into a cgroup. add_task() pays that wait.
        """
        join_files(self.join_files())

    def join_files(self) -> list[str]:
        """The files join() writes "0" to (a forked child can do it knowing only these)."""
        unified = self.dirs.get("")
        files = []
        for directory in self._unique:
            if directory != unified:
                files.append(directory + "/tasks")
            elif os.path.isdir(directory):
                files.append(directory + "/cgroup.procs")  # cgroup2 has no such shortcut between cgroups
        return files

    def pids(self) -> list[int]:
        return read_procs(self._primary())

    def exists(self) -> bool:
        return os.path.isdir(self._primary())

    def remove(self) -> None:
        failure: KobakoError | None = None
        for directory in self._unique:
            try:
                rmdir_tree(directory)
            except KobakoError as exc:  # keep going so one busy hierarchy does not leak the others
                if failure is None:
                    failure = exc
                else:
                    failure.add_cleanup_error(exc)
        if failure is not None:
            raise failure

    # --- freezer -----------------------------------------------------------------------------------

    def freeze(self) -> None:
        directory = self.dir_for("freezer", "pause")
        write_file(directory, "freezer.state", "FROZEN")
        attempts = [0]

        def frozen() -> bool:
            if read_file(directory, "freezer.state").strip() == "FROZEN":
                return True
            attempts[0] += 1
            if attempts[0] % 8 == 0:  # re-asking makes the v1 freezer retry tasks it could not catch yet
                write_file(directory, "freezer.state", "FROZEN")
            return False

        if not wait_until(frozen):
            write_file(directory, "freezer.state", "THAWED")
            raise Conflict(f"cgroup {directory} did not freeze (a task is stuck in uninterruptible sleep?)")

    def thaw(self) -> None:
        write_file(self.dir_for("freezer", "resume"), "freezer.state", "THAWED")

    def is_frozen(self) -> bool:
        directory = self.dirs.get("freezer")
        if directory is None:
            return False
        try:
            with open(directory + "/freezer.state") as f:
                return f.read().strip() == "FROZEN"
        except FileNotFoundError:
            return False

    def kill_all(self, sig: int) -> None:
        signal_all(self, sig)

    def stats(self) -> dict:
        from kobako.cgroups.v1.stats import collect

        return collect(self)

    # --- helpers -------------------------------------------------------------------------------------

    def dir_for(self, controller: str, purpose: str) -> str:
        directory = self.dirs.get(controller)
        if directory is None:
            raise FailedPrecondition(
                f"the {controller} cgroup controller is not mounted (needed for {purpose})"
            )
        return directory

    def _primary(self) -> str:
        for key in _PRIMARY:
            if key in self.dirs:
                return self.dirs[key]
        return self._unique[0]


def _resolve(path: str, hierarchies: dict[str, tuple[str, str]], proc_cgroup: str) -> dict[str, str]:
    """Per hierarchy, the container's absolute cgroup path (relative paths hang off this process's cgroup)."""
    keys = [key for key in HIERARCHIES if key in hierarchies]
    if path.startswith("/"):
        return dict.fromkeys(keys, path)
    if path.startswith("@"):
        stored = dict(entry.split(":", 1) for entry in path[1:].split(";") if ":" in entry)
        return {key: stored[key] for key in keys if key in stored}
    if not path or path.startswith("..") or "/../" in "/" + path + "/":
        raise InvalidArgument(f"cgroup path {path!r} is not a valid relative path")
    own = own_cgroups(proc_cgroup)
    fields = {key: field for field in own for key in (field.split(",") if field else [""])}
    out: dict[str, str] = {}
    for key in keys:
        base = own.get(fields.get(key, "\0"), "/")
        mount_root = hierarchies[key][1]
        if mount_root != "/" and (base + "/").startswith(mount_root + "/"):
            base = base[len(mount_root) :] or "/"  # our cgroup as seen through this mount
        out[key] = base.rstrip("/") + "/" + path
    return out


def _mkdir_cpuset(directory: str) -> None:
    """A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks: seed every new level from its parent."""
    try:
        os.mkdir(directory, 0o755)
    except FileExistsError:
        return
    except FileNotFoundError:
        _mkdir_cpuset(os.path.dirname(directory))
        if not mkdirs(directory):
            return
    except OSError:
        mkdirs(directory)  # raises the translated error
        return
    _seed_cpuset(directory)


def _seed_cpuset(directory: str) -> None:
    parent = os.path.dirname(directory)
    for name in ("cpuset.cpus", "cpuset.mems"):
        value = read_file(parent, name).strip()
        if not value:
            # A concurrent create made the parent a moment ago and has not seeded it yet: do it for both.
            _seed_cpuset(parent)
            value = read_file(parent, name).strip()
        write_file(directory, name, value)

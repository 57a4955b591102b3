"""cgroup v2 driver: one directory in the unified hierarchy."""

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
from kobako.errors import Conflict, InvalidArgument, KobakoError


class V2Manager:
    """A container cgroup on a cgroup v2 host (or under the cgroup2 mount of a hybrid host, for tests)."""

    def __init__(
        self, path: str, *, root: str = DEFAULT_ROOT, proc_cgroup: str = "/proc/self/cgroup"
    ) -> None:
        if not path.startswith("/"):
            if not path or path.startswith(("..", "@")) or "/../" in "/" + path + "/":
                raise InvalidArgument(f"cgroup path {path!r} is not a valid relative path")
            path = own_cgroups(proc_cgroup).get("", "/").rstrip("/") + "/" + path
        self.path = path
        self.root = root.rstrip("/")
        self.dir = self.root + path

    # --- lifecycle --------------------------------------------------------------------------------

    def create(self) -> None:
        mkdirs(self.dir)
        # Delegate every controller the host offers down to the new cgroup, the way runc does. Usually the
        # parent is already set up and the check below costs two small reads.
        wanted = set(read_file(self.root, "cgroup.controllers").split())
        if not wanted or wanted <= set(read_file(self.dir, "cgroup.controllers").split()):
            return
        from kobako.cgroups.v2.resources import enable_writes

        for directory, name, value in enable_writes(self.root, self.dir, wanted):
            try:
                write_file(directory, name, value)
            except KobakoError:
                # One controller can refuse (e.g. cpu while a realtime task sits in the parent): enable the
                # rest one by one. apply() reports a missing controller if the resources actually need it.
                for item in value.split():
                    try:
                        write_file(directory, name, item)
                    except KobakoError:
                        pass

    def apply(self, resources: dict) -> None:
        from kobako.cgroups.v2.resources import apply

        apply(self, resources)

    def add_task(self, pid: int) -> None:
        write_file(self.dir, "cgroup.procs", str(pid))

    def join(self) -> None:
        """Move the calling process in (the same cost as add_task on v2)."""
        join_files(self.join_files())

    def join_files(self) -> list[str]:
        """The files join() writes "0" to (a forked child can do it knowing only these)."""
        return [self.dir + "/cgroup.procs"]

    def pids(self) -> list[int]:
        return read_procs(self.dir)

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def remove(self) -> None:
        rmdir_tree(self.dir)

    # --- freezer -----------------------------------------------------------------------------------

    def freeze(self) -> None:
        write_file(self.dir, "cgroup.freeze", "1")
        if not wait_until(self.is_frozen):
            write_file(self.dir, "cgroup.freeze", "0")
            raise Conflict(f"cgroup {self.dir} did not freeze in time")

    def thaw(self) -> None:
        write_file(self.dir, "cgroup.freeze", "0")

    def is_frozen(self) -> bool:
        try:
            with open(self.dir + "/cgroup.events") as f:
                return "frozen 1" in f.read()
        except FileNotFoundError:
            return False

    def kill_all(self, sig: int) -> None:
        # cgroup.kill (Linux 5.14+) kills the whole subtree atomically: no freeze, no race with fork.
        if sig == 9 and os.path.exists(self.dir + "/cgroup.kill"):
            write_file(self.dir, "cgroup.kill", "1")
            return
        signal_all(self, sig)

    def stats(self) -> dict:
        from kobako.cgroups.v2.stats import collect

        return collect(self.dir)

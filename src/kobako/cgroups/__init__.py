"""cgroup drivers for the runtime: v1 (also used on hybrid hosts, as runc does) and v2.

    mgr = new_manager(spec_cgroups_path, container_id)   # pick the driver, resolve the path
    mgr.create(); mgr.apply(resources); mgr.add_task(pid)
    state["cgroup_path"] = mgr.path                      # later, in another process:
    load_manager(state["cgroup_path"]).freeze()

Only os-level imports happen here; each driver module is imported when the first manager is made.
"""

from __future__ import annotations

from kobako.cgroups.base import CgroupManager, normalise_path
from kobako.cgroups.hierarchy import detect

__all__ = ["CgroupManager", "detect", "load_manager", "new_manager"]


def new_manager(cgroups_path: str | None, container_id: str) -> CgroupManager:
    """The manager for a new container's cgroup.

    ``cgroups_path`` follows the OCI spec: absolute paths are relative to the hierarchy root, relative ones to
    this process's own cgroup, None/"" means "/kobako/<container_id>", and systemd's "slice:prefix:name" maps
    to "<slice path>/<prefix>-<name>.scope" on cgroupfs.
    """
    return load_manager(normalise_path(cgroups_path, container_id))


def load_manager(path: str) -> CgroupManager:
    """Re-open a container's cgroup from the ``path`` a manager reported (stored in the runtime's state)."""
    if not path.startswith(("/", "@")):
        path = normalise_path(path, "")  # a raw cgroupsPath: systemd form or relative
    if detect() == "v2":
        from kobako.cgroups.v2 import V2Manager

        return V2Manager(path)
    from kobako.cgroups.v1 import V1Manager

    return V1Manager(path)

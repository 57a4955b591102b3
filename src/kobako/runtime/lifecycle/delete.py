"""delete: remove a stopped container's cgroup and state (with --force, stop it first)."""

from __future__ import annotations

import os
import time

from kobako.errors import Conflict, NotFound
from kobako.runtime import container, hooks
from kobako.runtime import signals as sig_mod
from kobako.runtime import state as state_mod
from kobako.runtime import status as st_mod
from kobako.runtime.state import StateDir


def delete(root: str, container_id: str, force: bool = False) -> None:
    try:
        sd, st = container.load(root, container_id)
    except NotFound:
        if force:
            return
        raise
    if st.status == st_mod.CREATING:
        if not force:
            raise Conflict(f"cannot delete container {container_id!r}: it is still being created")
        StateDir(root, container_id).remove()
        return
    cgroup = container.cgroup_of(st)
    if st.status != st_mod.STOPPED:
        if not force:
            raise Conflict(f"cannot delete container {container_id!r} that is not stopped: {st.status}")
        _stop_now(st, cgroup)
    elif cgroup is not None and not st.owns_pidns:
        # Without its own PID namespace, the init's death does not end its children.
        cgroup.kill_all(sig_mod.SIGKILL)  # type: ignore[attr-defined]
    if cgroup is not None:
        cgroup.remove()  # type: ignore[attr-defined]
    stopped = st.oci()
    stopped["status"] = st_mod.STOPPED
    hooks.run_warn("poststop", st.hooks.get("poststop", []), stopped)
    sd.remove()


def _stop_now(st: state_mod.State, cgroup: object | None) -> None:
    if cgroup is not None:
        cgroup.kill_all(sig_mod.SIGKILL)  # type: ignore[attr-defined]
        if st.status == st_mod.PAUSED:
            cgroup.thaw()  # type: ignore[attr-defined]
    if state_mod.is_alive(st):
        try:
            os.kill(st.pid, sig_mod.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while state_mod.is_alive(st) and time.monotonic() < deadline:
        _reap_if_child(st.pid)
        time.sleep(0.005)


def _reap_if_child(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass

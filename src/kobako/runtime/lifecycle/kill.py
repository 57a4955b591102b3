"""kill: signal the container's init (after checking its start time), or every process with --all."""

from __future__ import annotations

import os

from kobako.errors import Conflict
from kobako.runtime import container
from kobako.runtime import signals as sig_mod
from kobako.runtime import status as st_mod


def kill(root: str, container_id: str, signal: int, all_processes: bool = False) -> None:
    _sd, st = container.load(root, container_id)
    if not st_mod.can_kill(st.status) and not (all_processes and st.status == st_mod.STOPPED):
        raise Conflict(f"cannot kill container {container_id!r}: it is {st.status}")
    cgroup = container.cgroup_of(st)
    if all_processes and cgroup is not None:
        cgroup.kill_all(signal)  # type: ignore[attr-defined]
    elif st.status != st_mod.STOPPED:
        try:
            os.kill(st.pid, signal)
        except ProcessLookupError:
            raise Conflict(f"container {container_id!r} is not running") from None
    if st.status == st_mod.PAUSED and signal == sig_mod.SIGKILL and cgroup is not None:
        cgroup.thaw()  # type: ignore[attr-defined]  # a frozen task cannot die until thawed

"""pause / resume: freeze and thaw every process of the container through its cgroup."""

from __future__ import annotations

from kobako.errors import Conflict, FailedPrecondition
from kobako.runtime import container
from kobako.runtime import status as st_mod


def pause(root: str, container_id: str) -> None:
    sd, st = container.load(root, container_id)
    if not st_mod.can_pause(st.status):
        raise Conflict(f"cannot pause container {container_id!r}: it is {st.status}")
    cgroup = _cgroup(st)
    cgroup.freeze()  # type: ignore[attr-defined]
    st.status = st_mod.PAUSED
    sd.save(st)


def resume(root: str, container_id: str) -> None:
    sd, st = container.load(root, container_id)
    if not st_mod.can_resume(st.status):
        raise Conflict(f"cannot resume container {container_id!r}: it is {st.status}, not paused")
    _cgroup(st).thaw()  # type: ignore[attr-defined]
    st.status = st_mod.RUNNING
    sd.save(st)


def _cgroup(st: object) -> object:
    cgroup = container.cgroup_of(st)  # type: ignore[arg-type]
    if cgroup is None:
        raise FailedPrecondition("the container has no cgroup to freeze")
    return cgroup

"""Loading a container handle: its state directory and its true, refreshed state."""

from __future__ import annotations

from kobako.runtime import state as state_mod
from kobako.runtime.state import State, StateDir


def load(root: str, container_id: str) -> tuple[StateDir, State]:
    sd = StateDir(root, container_id)
    st = sd.load()
    state_mod.refresh(st, sd)
    return sd, st


def cgroup_of(st: State) -> object | None:
    if not st.cgroup_path:
        return None
    from kobako.cgroups import load_manager

    return load_manager(st.cgroup_path)

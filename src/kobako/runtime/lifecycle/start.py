"""start: release the init from the exec fifo so it execs the user's process."""

from __future__ import annotations

import os

from kobako.errors import Conflict, FailedPrecondition
from kobako.runtime import container, hooks
from kobako.runtime import state as state_mod
from kobako.runtime import status as st_mod
from kobako.runtime.state import State, StateDir


def start(root: str, container_id: str) -> State:
    sd, st = container.load(root, container_id)
    if not st_mod.can_start(st.status):
        raise Conflict(f"cannot start container {container_id!r}: it is {st.status}, not created")
    release(sd, st)
    return st


def release(sd: StateDir, st: State, reader: int = -1) -> None:
    """Open the fifo for reading: the init's blocked open returns and it writes one byte, then execs.
    ``reader``: the fifo's reading end, already open (then the init did not block; see `run`)."""
    import select

    fd = reader if reader >= 0 else os.open(sd.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(100) and os.read(fd, 1):
                break
            if not state_mod.is_alive(st):
                raise FailedPrecondition(f"container {st.id!r} init exited before it could start")
    finally:
        os.close(fd)
    os.unlink(sd.fifo)
    st.status = st_mod.RUNNING
    sd.save(st)
    hooks.run_warn("poststart", st.hooks.get("poststart", []), st.oci())

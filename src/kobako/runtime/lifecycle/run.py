"""run: create + start, and in the foreground also wait, forward signals, relay the tty and delete."""

from __future__ import annotations

import os

from kobako.runtime import syscalls as sc
from kobako.runtime.lifecycle.create import CreateOptions, create
from kobako.runtime.lifecycle.delete import delete
from kobako.runtime.lifecycle.start import release
from kobako.runtime.signals import forward_to
from kobako.runtime.state import StateDir


def run(root: str, container_id: str, opts: CreateOptions) -> int:
    if opts.detach:
        st = create(root, container_id, opts)
        release(StateDir(root, container_id), st)
        return 0
    # The init is our grandchild; as a subreaper we inherit it when the intermediate exits, and can wait.
    sc.linux.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    opts.start_at_once = True
    relay = None
    if _wants_tty(opts):
        from kobako.runtime.lifecycle.ttyrelay import TtyRelay

        relay = TtyRelay()
        opts.console_fd = relay.container_end
    try:
        st = create(root, container_id, opts)
    finally:
        if relay is not None:
            relay.close_container_end()
    try:
        forward_to(st.pid)
        release(StateDir(root, container_id), st, opts.fifo_reader)
        if relay is not None:
            relay.run()
        code = wait_exit_code(st.pid)
    finally:
        delete(root, container_id, force=True)
        _reap_orphans()
    return code


def _wants_tty(opts: CreateOptions) -> bool:
    if opts.console_socket or opts.console_fd >= 0:
        return False
    from kobako.runtime.lifecycle.create import load_bundle

    opts.loaded = load_bundle(opts.bundle)  # create() reuses it
    return bool(opts.loaded[1]["process"].get("terminal"))


def wait_exit_code(pid: int) -> int:
    """Wait for ``pid``; exit code, or 128 + signal number as a shell reports it."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return

"""no_new_privs and dumpable on the real kernel."""

from __future__ import annotations

import pytest

from kobako.runtime.security import nonewprivs

pytestmark = pytest.mark.root


def test_no_new_privs_is_set_and_survives_execve(child) -> None:
    def body() -> tuple[bool, bool, str]:
        before = nonewprivs.no_new_privs()
        nonewprivs.set_no_new_privs()
        return before, nonewprivs.no_new_privs(), child.own_status()["NoNewPrivs"]

    assert child.call(body).ok() == (False, True, "1")

    result = child.exec(nonewprivs.set_no_new_privs, [child.BUSYBOX, "cat", "/proc/self/status"])
    assert result.exit_code == 0, result.output
    assert child.status_fields(result.output.decode())["NoNewPrivs"] == "1"


def test_set_dumpable(child) -> None:
    def body() -> tuple[bool, bool, bool]:
        start = nonewprivs.dumpable()
        nonewprivs.set_dumpable(False)
        off = nonewprivs.dumpable()
        nonewprivs.set_dumpable(True)
        return start, off, nonewprivs.dumpable()

    assert child.call(body).ok() == (True, False, True)


def test_non_dumpable_process_proc_entries_belong_to_root(child) -> None:
    # The kernel hands a non-dumpable process's /proc/<pid> files to root: what keeps a
    # same-uid container process from opening the runtime's /proc/<pid>/exe or mem.
    def body() -> tuple[int, int]:
        import os

        os.setresgid(4321, 4321, 4321)
        os.setresuid(4321, 4321, 4321)  # a credential change makes the process non-dumpable...
        nonewprivs.set_dumpable(True)  # ...so turn it back on to see the difference
        before = os.stat("/proc/self/status").st_uid
        nonewprivs.set_dumpable(False)
        return before, os.stat("/proc/self/status").st_uid

    assert child.call(body).ok() == (4321, 0)

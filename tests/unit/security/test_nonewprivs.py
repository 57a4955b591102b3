"""nonewprivs: the prctl calls it makes (fake kernel)."""

from __future__ import annotations

from kobako.runtime.security import _libc, nonewprivs


def test_set_no_new_privs(fake_kernel) -> None:
    assert not nonewprivs.no_new_privs()
    nonewprivs.set_no_new_privs()
    assert fake_kernel.calls[-1] == ("prctl", _libc.PR_SET_NO_NEW_PRIVS, 1, 0)
    assert nonewprivs.no_new_privs()


def test_set_dumpable(fake_kernel) -> None:
    nonewprivs.set_dumpable(False)
    assert fake_kernel.calls[-1] == ("prctl", _libc.PR_SET_DUMPABLE, 0, 0)
    assert not nonewprivs.dumpable()
    nonewprivs.set_dumpable(True)
    assert nonewprivs.dumpable()

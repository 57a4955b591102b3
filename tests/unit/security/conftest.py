"""Unit tests of the security primitives: a recording fake kernel at the libc seam."""

from __future__ import annotations

import errno

import pytest

from kobako.runtime.security import _libc

ALL_CAPS = (1 << 41) - 1


class FakeKernel:
    """Stands in for :mod:`kobako.runtime.security._libc`: records calls, models the capability rules."""

    def __init__(self, effective: int = ALL_CAPS, permitted: int = ALL_CAPS, inheritable: int = 0) -> None:
        for name in dir(_libc):
            if name.startswith(("PR_", "LINUX_")):
                setattr(self, name, getattr(_libc, name))
        self.host_module = _libc.host_module
        self.effective, self.permitted, self.inheritable = effective, permitted, inheritable
        self.bounding = ALL_CAPS
        self.ambient = 0
        self.keepcaps = 0
        self.no_new_privs = 0
        self.dumpable = 1
        self.calls: list[tuple[object, ...]] = []

    def _fail(self, code: int) -> None:
        raise OSError(code, "fake")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        self.calls.append(("prctl", option, arg2, arg3))
        if option == _libc.PR_CAPBSET_READ:
            if arg2 > 40:
                self._fail(errno.EINVAL)
            return self.bounding >> arg2 & 1
        if option == _libc.PR_CAPBSET_DROP:
            if arg2 > 40:
                self._fail(errno.EINVAL)
            if not self.effective >> 8 & 1:  # CAP_SETPCAP
                self._fail(errno.EPERM)
            self.bounding &= ~(1 << arg2)
            return 0
        if option == _libc.PR_CAP_AMBIENT:
            if arg2 == _libc.PR_CAP_AMBIENT_CLEAR_ALL:
                self.ambient = 0
            elif arg2 == _libc.PR_CAP_AMBIENT_RAISE:
                if not (self.permitted & self.inheritable) >> arg3 & 1:
                    self._fail(errno.EPERM)
                self.ambient |= 1 << arg3
            return 0
        if option == _libc.PR_SET_KEEPCAPS:
            self.keepcaps = arg2
        elif option == _libc.PR_SET_NO_NEW_PRIVS:
            self.no_new_privs = arg2
        elif option == _libc.PR_GET_NO_NEW_PRIVS:
            return self.no_new_privs
        elif option == _libc.PR_SET_DUMPABLE:
            self.dumpable = arg2
        elif option == _libc.PR_GET_DUMPABLE:
            return self.dumpable
        return 0

    def capget(self) -> tuple[int, int, int]:
        self.calls.append(("capget",))
        return self.effective, self.permitted, self.inheritable

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self.calls.append(("capset", effective, permitted, inheritable))
        if effective & ~permitted or permitted & ~self.permitted:
            self._fail(errno.EPERM)
        if inheritable & ~(self.inheritable | self.bounding):
            self._fail(errno.EPERM)
        self.effective, self.permitted, self.inheritable = effective, permitted, inheritable

    def names(self) -> list[str]:
        """The calls as short words, for order checks."""
        words = {
            _libc.PR_CAPBSET_DROP: "drop",
            _libc.PR_CAPBSET_READ: "read",
            _libc.PR_CAP_AMBIENT: "ambient",
            _libc.PR_SET_KEEPCAPS: "keepcaps",
        }
        return [str(words.get(c[1], c[1])) if c[0] == "prctl" else str(c[0]) for c in self.calls]


@pytest.fixture
def fake_kernel(monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    from kobako.runtime.security import capabilities, nonewprivs

    kernel = FakeKernel()
    monkeypatch.setattr(capabilities, "_libc", kernel)
    monkeypatch.setattr(nonewprivs, "_libc", kernel)
    monkeypatch.setattr(capabilities, "_last_cap", 40)
    return kernel

"""rlimits through prlimit(2): the same numbers and values as the resource module."""

from __future__ import annotations

import os
import resource

import pytest

from kobako.errors import InvalidArgument
from kobako.runtime import rlimits


def test_every_type_reads_what_the_resource_module_reads() -> None:
    for name, kind in rlimits.TYPES.items():
        if not hasattr(resource, name):  # RLIMIT_LOCKS: Linux has it, Python's module does not
            continue
        assert kind == getattr(resource, name), name
        expected = tuple(
            rlimits.INFINITY if v == resource.RLIM_INFINITY else v for v in resource.getrlimit(kind)
        )
        assert rlimits.get(kind) == expected, name


def test_spec_values_map_unlimited_to_rlim_infinity() -> None:
    assert rlimits.rlim(2**64 - 1) == rlimits.INFINITY
    assert rlimits.rlim(-1) == rlimits.INFINITY
    assert rlimits.rlim(1024) == 1024


def test_check_refuses_unknown_types_and_soft_above_hard() -> None:
    with pytest.raises(InvalidArgument, match="unknown rlimit type 'RLIMIT_NOPE'"):
        rlimits.check([{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}])
    with pytest.raises(InvalidArgument, match="soft limit 10 exceeds hard 5"):
        rlimits.check([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}])
    rlimits.check([{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}])


def test_apply_sets_the_limits_of_the_calling_process() -> None:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            rlimits.apply([
                {"type": "RLIMIT_NOFILE", "soft": 77, "hard": 88},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            ])  # fmt: skip
            nofile, core = (
                resource.getrlimit(resource.RLIMIT_NOFILE),
                resource.getrlimit(resource.RLIMIT_CORE),
            )
            code = 0 if (nofile, core) == ((77, 88), (0, 0)) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

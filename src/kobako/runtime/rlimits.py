"""process.rlimits: checked against the host by the runtime, applied in the container before execve.

Through prlimit(2) in libc, which the runtime has loaded anyway, rather than the ``resource`` module
(one more shared library to load on every container start).
"""

from __future__ import annotations

from kobako.errors import InvalidArgument

# The generic Linux numbering (x86_64, arm64, riscv, ...).
TYPES = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}  # fmt: skip
INFINITY = 2**64 - 1  # RLIM_INFINITY: the OCI spec's "unlimited" is the same unsigned value


def rlim(value: int) -> int:
    """A spec value as rlim_t: anything at or above 2**63 (or negative) means unlimited."""
    return INFINITY if value >= 2**63 or value < 0 else value


def _kind(name: str) -> int:
    kind = TYPES.get(name)
    if kind is None:
        raise InvalidArgument(f"config.json: process.rlimits: unknown rlimit type {name!r}")
    return kind


def get(kind: int) -> tuple[int, int]:
    """This process's (soft, hard) limit of ``kind``."""
    from kobako import libc

    current = libc.u64_array([0, 0])
    libc.call("prlimit", 0, kind, None, current)
    soft, hard = list(current)  # type: ignore[call-overload]
    return soft, hard


def check(rlimits: list[dict]) -> None:
    """Refuse unknown types, soft above hard, and a hard limit above the host's (raising it needs
    CAP_SYS_RESOURCE, which the runtime may not have): a clear error before anything is made."""
    for rl in rlimits:
        kind = _kind(rl["type"])
        soft, hard = rlim(rl["soft"]), rlim(rl["hard"])
        if (soft == INFINITY and hard != INFINITY) or (hard != INFINITY and soft > hard):
            raise InvalidArgument(
                f"config.json: {rl['type']}: soft limit {rl['soft']} exceeds hard {rl['hard']}"
            )
        host_hard = get(kind)[1]
        if host_hard != INFINITY and (hard == INFINITY or hard > host_hard):
            raise InvalidArgument(
                f"config.json: {rl['type']}: hard limit {rl['hard']} is above the host's hard limit {host_hard}"
            )


def apply(rlimits: list[dict]) -> None:
    if not rlimits:
        return
    from kobako import libc

    for rl in rlimits:
        wanted = libc.u64_array([rlim(rl["soft"]), rlim(rl["hard"])])
        libc.call("prlimit", 0, _kind(rl["type"]), wanted, None)

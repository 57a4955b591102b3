"""process.rlimits: checked against the host before fork, applied in the container before execve."""

from __future__ import annotations

from kobako.errors import InvalidArgument


def rlim(value: int) -> int:
    """The OCI spec's "unlimited" is 2**64-1 (an unsigned rlim_t); setrlimit takes RLIM_INFINITY."""
    import resource

    return resource.RLIM_INFINITY if value >= 2**63 or value < 0 else value


def check(rlimits: list[dict]) -> None:
    """Refuse unknown types, soft above hard, and a hard limit above the host's (raising it needs
    CAP_SYS_RESOURCE, which the runtime may not have): a clear error before anything is made."""
    import resource

    infinite = resource.RLIM_INFINITY
    for rl in rlimits:
        kind = getattr(resource, rl["type"], None)
        if not rl["type"].startswith("RLIMIT_") or kind is None:
            raise InvalidArgument(f"config.json: process.rlimits: unknown rlimit type {rl['type']!r}")
        soft, hard = rlim(rl["soft"]), rlim(rl["hard"])
        if (soft == infinite and hard != infinite) or (hard != infinite and soft > hard):
            raise InvalidArgument(
                f"config.json: {rl['type']}: soft limit {rl['soft']} exceeds hard {rl['hard']}"
            )
        host_hard = resource.getrlimit(kind)[1]
        if host_hard != infinite and (hard == infinite or hard > host_hard):
            raise InvalidArgument(
                f"config.json: {rl['type']}: hard limit {rl['hard']} is above the host's hard limit {host_hard}"
            )


def apply(rlimits: list[dict]) -> None:
    if not rlimits:
        return
    import resource

    for rl in rlimits:
        resource.setrlimit(getattr(resource, rl["type"]), (rlim(rl["soft"]), rlim(rl["hard"])))

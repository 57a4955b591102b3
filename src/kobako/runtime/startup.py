"""What the `kobako-runtime` launcher preloads per verb (see ``kobako.startupcache``).

Each group names the modules a verb imports, lazily imported ones included (C extensions too): the
cache holds them and everything they import. `create` and `run` also take what the forked init needs, so the child inherits
it instead of importing it while the container is being built. A module missing here is only imported
the ordinary way.
"""

from __future__ import annotations

_BASE = ["kobako.runtime.cli", "kobako.runtime.commands"]
_CREATE = [
    "kobako.runtime.lifecycle.create",
    "kobako.runtime.lifecycle.start",
    "kobako.runtime.lifecycle.delete",
    "kobako.runtime.lifecycle.run",
    "kobako.runtime.process.init",
    "kobako.runtime.devices",
    "kobako.runtime.rlimits",
    "kobako.runtime.security",
    "kobako.runtime.security.capabilities",
    "kobako.runtime.security.seccomp",
    "kobako.libc",
    "kobako.cgroups",
    "select",  # a C extension imported lazily on the way: the start handshake
]


def groups() -> tuple[dict[str, list[str]], set[str]]:
    """The groups by verb and the global flags that take a value (to find the verb in argv)."""
    from kobako.cgroups.hierarchy import detect
    from kobako.runtime.cli import _GLOBAL

    # The driver's resources module (limits) is left out: the parent imports it after the fork, while
    # the init builds its rootfs.
    driver = [f"kobako.cgroups.{detect()}"]
    state = [*_BASE, "kobako.runtime.container", "kobako.runtime.state"]
    return (
        {
            "": _BASE,
            "create": [*_BASE, *_CREATE, *driver],
            "run": [*_BASE, *_CREATE, *driver],
            "start": [*state, "kobako.runtime.lifecycle.start"],
            "state": state,
            "kill": [*state, "kobako.runtime.lifecycle.kill"],
            "delete": [*state, "kobako.runtime.lifecycle.delete", *driver],
            "exec": [*state, "kobako.runtime.lifecycle.exec", "kobako.runtime.process.init", "kobako.libc"],
        },
        {name for name, (_dest, takes_value, _rep) in _GLOBAL.items() if takes_value},
    )

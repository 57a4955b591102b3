"""What `kobako run` and `kobako create` preload from the start-up cache (see ``kobako.startupcache``): the
group "run" up to `go`, "run-end" while the monitor creates the task.

Unlike the runtime's launcher, `kobako` preloads late: ``run`` forks the container's monitor first, while
the process is small (the monitor keeps what it inherits), and only then loads the group, so the monitor
does not carry the CLI's modules. Lazily imported modules are listed too (C extensions included); one
missing here is only imported the ordinary way.
"""

from __future__ import annotations

_RUN = [
    "kobako.cli.containers",
    "kobako.engine.service",
    "kobako.engine.containers",
    "kobako.engine.tasks",
    "kobako.engine.runopts",
    "kobako.engine.runflags",
    "kobako.engine.envfiles",
    "kobako.engine.netopts",
    "kobako.engine.secopts",
    "kobako.engine.sizes",
    "kobako.engine.mountspecs",
    "kobako.engine.monitor_net",
    "kobako.engine.restart",
    "kobako.engine.defaults",
    "kobako.engine.etcfiles",
    "kobako.engine.users",
    "kobako.engine.specgen",
    "kobako.engine.attach",
    "kobako.images.service",
    "kobako.images.snapshotters",
    "kobako.metadata.db",
    "kobako.oci.image_spec",
    "kobako.oci.reference",
    "kobako.runtime.securepath",
    "kobako.snapshots.storage",
    "kobako.snapshots.dirstore",
    "kobako.snapshots.overlay",
    "kobako.mount",
    "kobako.libc",
    "kobako.runtime.security.default_seccomp",
    # C extensions imported inside functions on the way
    "_json",
    "_sqlite3",
    "_ctypes",
    "resource",
    "fcntl",
    "_socket",
]
# What a foreground run needs after `go` (attaching, then removing a --rm container): loaded while the
# monitor creates the task, off the critical path.
_RUN_END = [
    "kobako.cli.containers_io",
    "kobako.runtime.status",
    "kobako.runtime.state",
    "kobako.runtime.lifecycle.delete",
    "select",
]


def groups() -> tuple[dict[str, list[str]], set[str]]:
    """The groups by verb, and the global flags that take a value (none: the verb is the first word)."""
    return {"run": _RUN, "run-end": _RUN_END}, set()

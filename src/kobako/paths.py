"""Where kobako keeps its state. ``KOBAKO_ROOT`` moves all of it (tests and users run side by side).

- ``state_root()``: images, snapshots, containers, volumes — ``/var/lib/kobako`` or ``$KOBAKO_ROOT``
- ``run_root()``: runtime state that does not survive a reboot — ``/run/kobako`` or ``$KOBAKO_ROOT/run``
- ``runtime_root()``: the OCI runtime's container states — ``<run_root>/runtime``
"""

from __future__ import annotations

import os

DEFAULT_STATE = "/var/lib/kobako"
DEFAULT_RUN = "/run/kobako"


def state_root() -> str:
    return os.environ.get("KOBAKO_ROOT") or DEFAULT_STATE


def run_root() -> str:
    base = os.environ.get("KOBAKO_ROOT")
    return os.path.join(base, "run") if base else DEFAULT_RUN


def runtime_root() -> str:
    return os.path.join(run_root(), "runtime")

"""Container status and what each lifecycle verb may do in each status (the OCI state machine)."""

from __future__ import annotations

CREATING = "creating"
CREATED = "created"
RUNNING = "running"
STOPPED = "stopped"
PAUSED = "paused"


def can_start(status: str) -> bool:
    return status == CREATED


def can_kill(status: str) -> bool:
    return status in (CREATED, RUNNING, PAUSED)


def can_delete(status: str) -> bool:
    return status == STOPPED


def can_pause(status: str) -> bool:
    return status in (RUNNING, CREATED)


def can_resume(status: str) -> bool:
    return status == PAUSED


def can_exec(status: str) -> bool:
    return status in (CREATED, RUNNING)

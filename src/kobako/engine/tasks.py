"""Tasks: the running side of a container, separate from its record (DESIGN.md, "Records are not processes").

``containers/<id>/state.json`` is the monitor's view (status, pids, exit code, times, restarts, health). The
monitor is its only writer while it lives; a CLI writes it only when no monitor is alive (create, and after
finding a dead monitor). A stored PID is never trusted bare: its start time is stored with it.

``observe`` derives the TRUE state from the kernel, so `ps` stays right after a ``kill -9`` of the CLI or of
the monitor: a live container (runtime state + pid start time) is running whatever the file says; a dead
container whose monitor is dead too is exited, with exit code -1 when nobody saw it exit (as podman does).

``containers/<id>/stopped`` marks a stop asked by a user: the monitor then does not apply the restart
policy. `start` removes it.
"""

from __future__ import annotations

import os
import time

from kobako import paths
from kobako.engine.clock import ZERO, rfc3339
from kobako.engine.containers import STATE, ContainerRecord, ContainerStore, read_json, write_atomic
from kobako.errors import Conflict, NotFound
from kobako.oci import jsoncodec

ACTIVE = ("running", "paused", "restarting", "starting")
STOPPED_FLAG = "stopped"
UNKNOWN_EXIT = -1


class TaskState:
    FIELDS = (
        "status", "pid", "pid_start", "monitor_pid", "monitor_start", "exit_code", "oom_killed", "error",
        "started_at", "finished_at", "restart_count", "health",
    )  # fmt: skip

    def __init__(self, **fields: object) -> None:
        self.status: str = str(fields.get("status", "created"))
        self.pid: int = int(fields.get("pid", 0))  # type: ignore[call-overload]
        self.pid_start: int = int(fields.get("pid_start", 0))  # type: ignore[call-overload]
        self.monitor_pid: int = int(fields.get("monitor_pid", 0))  # type: ignore[call-overload]
        self.monitor_start: int = int(fields.get("monitor_start", 0))  # type: ignore[call-overload]
        self.exit_code: int = int(fields.get("exit_code", 0))  # type: ignore[call-overload]
        self.oom_killed: bool = bool(fields.get("oom_killed", False))
        self.error: str = str(fields.get("error", ""))
        self.started_at: str = str(fields.get("started_at", ZERO))
        self.finished_at: str = str(fields.get("finished_at", ZERO))
        self.restart_count: int = int(fields.get("restart_count", 0))  # type: ignore[call-overload]
        self.health: dict | None = fields.get("health")  # type: ignore[assignment]

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")


def load(store: ContainerStore, container_id: str) -> TaskState:
    data = read_json(store.path(container_id, STATE))
    return TaskState(**data) if data else TaskState()


def save(store: ContainerStore, container_id: str, st: TaskState) -> None:
    write_atomic(store.path(container_id, STATE), jsoncodec.dumps(st.to_dict()).encode())


def process_start_time(pid: int) -> int:
    """The kernel's start time of ``pid`` (kobako.runtime.state), imported on first use: `run` needs it only
    once its container has ended, and imports it while the container starts."""
    from kobako.runtime.state import process_start_time as start_time

    return start_time(pid)


def alive(pid: int, start: int) -> bool:
    return pid > 0 and start > 0 and process_start_time(pid) == start


def runtime_task(container_id: str) -> tuple[str, int, str] | None:
    """(status, pid, cgroup path) from the OCI runtime's own state, refreshed from the kernel; None if absent."""
    from kobako.errors import KobakoError
    from kobako.runtime import container

    try:
        _sd, st = container.load(paths.runtime_root(), container_id)
    except KobakoError:
        return None
    return st.status, st.pid, st.cgroup_path


def monitor_alive(st: TaskState) -> bool:
    return alive(st.monitor_pid, st.monitor_start)


def observe(store: ContainerStore, container_id: str) -> TaskState:
    """The task's true state (see the module docstring); nothing is written."""
    st = load(store, container_id)
    if st.status not in ACTIVE:
        return st
    rt = runtime_task(container_id)
    if rt is not None and rt[0] in ("running", "paused", "created") and rt[1]:
        if st.status != "starting" or rt[0] != "created":
            st.status = "paused" if rt[0] == "paused" else "running"
        st.pid = rt[1]
        return st
    if monitor_alive(st):
        if st.status in ("running", "paused"):
            st.status = "running"  # exited a moment ago; the monitor is recording it
        return st
    # The monitor may have recorded the end and exited between our first read and the checks above.
    recorded = load(store, container_id)
    if recorded.status not in ACTIVE:
        return recorded
    # Nobody is watching and nothing runs: the container ended unseen (or never got going).
    if st.status != "restarting":
        st.exit_code = UNKNOWN_EXIT
        if st.finished_at == ZERO:
            st.finished_at = rfc3339()
    st.status = "exited"
    st.pid = 0
    return st


def is_active(store: ContainerStore, container_id: str) -> bool:
    return observe(store, container_id).status in ACTIVE


def mark_stopped(store: ContainerStore, container_id: str, stopped: bool = True) -> None:
    flag = store.path(container_id, STOPPED_FLAG)
    if stopped:
        with open(flag, "w"):
            pass
    else:
        try:
            os.unlink(flag)
        except FileNotFoundError:
            pass


def wake_monitor(st: TaskState) -> None:
    """SIGUSR2 makes the monitor re-read the stop flag (e.g. while it waits to restart)."""
    if monitor_alive(st):
        try:
            os.kill(st.monitor_pid, 12)
        except ProcessLookupError:
            pass


def signal(store: ContainerStore, record: ContainerRecord, sig: int) -> None:
    """Signal the container's init (checked by start time); a frozen container is thawed for SIGKILL."""
    st = observe(store, record.id)
    if not st.running:
        raise Conflict(f"container {record.id[:12]} is not running")
    from kobako.runtime.lifecycle.kill import kill

    try:
        kill(paths.runtime_root(), record.id, sig)
    except (Conflict, NotFound):  # it ended (and its monitor cleaned up) since we looked
        raise Conflict(f"container {record.id[:12]} is not running") from None


def wait_exit(store: ContainerStore, container_id: str, timeout: float | None = None,
              statuses: tuple[str, ...] = ACTIVE) -> TaskState:  # fmt: skip
    """Poll until the task leaves ``statuses`` (or ``timeout`` passes); the final observed state."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while True:
        st = observe(store, container_id)
        if st.status not in statuses:
            return st
        if deadline is not None and time.monotonic() >= deadline:
            return st
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def stop(store: ContainerStore, record: ContainerRecord, timeout: float, sig: int) -> TaskState:
    """Ask nicely with ``sig``, SIGKILL after ``timeout`` seconds, then wait for the monitor to record it."""
    mark_stopped(store, record.id)
    st = observe(store, record.id)
    if st.status == "restarting":
        wake_monitor(st)
        return wait_exit(store, record.id, 10)
    if not st.running:
        return st
    try:
        if st.status == "paused":
            signal(store, record, 9)
        else:
            signal(store, record, sig)
    except Conflict:
        pass
    st = wait_exit(store, record.id, timeout, ("running", "paused"))
    if st.running:
        from kobako.runtime.lifecycle.kill import kill

        try:
            kill(paths.runtime_root(), record.id, 9, all_processes=True)
        except (Conflict, NotFound, OSError):
            pass  # the monitor removed the cgroup as the task ended under our hands
    return wait_exit(store, record.id, 10)


def reset_for_start(store: ContainerStore, record: ContainerRecord) -> None:
    """Before a new monitor starts: a task must not be running, the last monitor must be gone (it deletes
    the runtime state after reporting the exit), and a stop request is forgotten."""
    st = observe(store, record.id)
    if st.status in ACTIVE:
        if st.status == "restarting":
            raise Conflict(f"container {record.id[:12]} is restarting: stop it first")
        raise Conflict(f"container {record.id[:12]} is already running")
    wait_monitor_gone(st)
    mark_stopped(store, record.id, False)


def wait_monitor_gone(st: TaskState, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while st.monitor_pid != os.getpid() and monitor_alive(st) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def oom_killed(cgroup_path: str) -> bool:
    """Whether the kernel's OOM killer acted in this cgroup (v1 memory.oom_control, v2 memory.events)."""
    if not cgroup_path:
        return False
    from kobako.cgroups import load_manager

    try:
        mgr = load_manager(cgroup_path)
    except Exception:
        return False
    dirs = getattr(mgr, "dirs", None)
    candidates = []
    if dirs is not None:
        if "memory" in dirs:
            candidates.append((dirs["memory"], "memory.oom_control"))
    else:
        candidates.append((getattr(mgr, "dir", ""), "memory.events"))
    for directory, name in candidates:
        try:
            with open(os.path.join(directory, name)) as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key in ("oom_kill", "oom") and value.strip().isdigit() and int(value) > 0:
                return True
    return False

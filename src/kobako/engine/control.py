"""Stop, kill and remove a container as `kobako stop|kill|rm` and the Engine API both do them.

Each takes a loaded record; lifecycle changes hold the record's lock (kill does not: a signal is no change).
"""

from __future__ import annotations

from kobako.engine import service, tasks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.containers import ContainerRecord, ContainerStore


def stop(store: ContainerStore, record: ContainerRecord, timeout: int | None = None,
         signal: str | None = None) -> tasks.TaskState:  # fmt: skip
    """``signal`` (default: the record's StopSignal), SIGKILL after ``timeout`` s (default: the record's;
    negative: wait forever)."""
    from kobako.runtime import signals

    seconds = record.stop_timeout if timeout is None else timeout
    sig = signals.parse(str(signal or record.stop_signal))
    with store.lock(record.id):
        return tasks.stop(store, record, seconds if seconds >= 0 else 10**9, sig)


def kill(store: ContainerStore, record: ContainerRecord, signal: str | None = None) -> None:
    from kobako.runtime import signals

    sig = signals.parse(str(signal or "KILL"))
    if sig == 9 or sig == signals.parse(record.stop_signal):
        tasks.mark_stopped(store, record.id)  # the user ended it: no restart policy
    tasks.signal(store, record, sig)


def remove(
    store: ContainerStore, record: ContainerRecord, force: bool = False, volumes: bool = False
) -> None:
    with store.lock(record.id):
        service.remove(store, record, volumes=volumes, force=force)

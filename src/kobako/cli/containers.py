"""`kobako` container verbs: run, create, start, stop, kill, restart, rm, wait, rename, pause, unpause, prune.

Read-only views (ps, inspect, logs, stats, top, port) are in containers_view.py; exec and the attach loop in
containers_io.py; cp in containers_cp.py. Each function takes the verb's argv and returns an exit code.
Exit codes follow docker: 125 when kobako fails before the container runs, 126/127 when the command cannot
be executed or found, else the container's own code (137 after a SIGKILL, e.g. an OOM kill).
"""

from __future__ import annotations

import sys

from kobako.cli.flags import Flag, Flags
from kobako.errors import InvalidArgument, KobakoError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.containers import ContainerRecord, ContainerStore


def cmd_exec(argv: list[str]) -> int:
    from kobako.cli.containers_io import cmd_exec as verb

    return verb(argv)


def cmd_cp(argv: list[str]) -> int:
    from kobako.cli.containers_cp import cmd_cp as verb

    return verb(argv)


def _view(name: str, argv: list[str]) -> int:
    from kobako.cli import containers_view

    return int(getattr(containers_view, name)(argv))


def cmd_ps(argv: list[str]) -> int:
    return _view("cmd_ps", argv)


def cmd_inspect(argv: list[str]) -> int:
    return _view("cmd_inspect", argv)


def cmd_logs(argv: list[str]) -> int:
    return _view("cmd_logs", argv)


def cmd_stats(argv: list[str]) -> int:
    return _view("cmd_stats", argv)


def cmd_top(argv: list[str]) -> int:
    return _view("cmd_top", argv)


def cmd_port(argv: list[str]) -> int:
    return _view("cmd_port", argv)


def _err(exc: BaseException | str) -> None:
    sys.stderr.write(f"kobako: {exc}\n")


def _store() -> ContainerStore:
    from kobako.engine.containers import ContainerStore

    return ContainerStore()


def cmd_run(argv: list[str]) -> int:
    return _run(argv, start=True)


def cmd_create(argv: list[str]) -> int:
    return _run(argv, start=False)


def _run(argv: list[str], start: bool) -> int:
    prefork = None
    if start and "--help" not in argv:
        from kobako.engine.monitor_fork import Prefork

        prefork = Prefork(reap_later=True)  # first, while this process is small: the monitor keeps its memory
    from kobako.startupcache import preload_later

    preload_later("run")  # then what this process needs, from the start-up cache (when the launcher has one)
    try:
        return _create_and_start(argv, start, prefork)
    finally:
        if prefork is not None:
            prefork.cancel()


def _create_and_start(argv: list[str], start: bool, prefork: object) -> int:
    from kobako.engine import service
    from kobako.engine.runopts import parse_run_args

    try:
        opts, image_ref, cmd = parse_run_args(argv)
    except KobakoError as exc:
        _err(exc)
        return 125
    if getattr(opts, "help", False):
        print(f"usage: kobako {'run' if start else 'create'} [OPTIONS] IMAGE [COMMAND] [ARG...]")
        return 0
    if prefork is not None:
        from kobako.engine import monitor_net

        if monitor_net.wants(opts):
            prefork.hint_network()  # type: ignore[attr-defined]
    store = _store()
    from kobako.images.service import ImageService

    images = ImageService()  # kept open for the removal of a --rm container (see _remove_quietly)
    try:
        record = service.create(store, opts, image_ref, cmd, keep_mounted=start, images=images)
    except KobakoError as exc:
        images.close()
        _err(exc)
        return 125
    if not start:
        images.close()
        print(record.id)
        return 0

    def while_starting() -> None:  # the monitor creates the task on the other core meanwhile
        try:
            images.checkpoint()  # the fsyncs of the snapshot's commit, off the critical path
        except Exception:  # only an optimisation: whatever stops it here, a later close checkpoints
            pass
        _collect_garbage_again()
        if not opts.detach:
            from kobako.startupcache import preload_later

            preload_later("run-end")  # what comes next, loaded now (or imported below without a cache)
            from kobako.cli import containers_io  # noqa: F401
            from kobako.runtime import state  # noqa: F401
            from kobako.runtime.lifecycle import delete  # noqa: F401

    try:
        sock, reader, pending = service.start(store, record, prefork, while_starting, mounted=True)  # type: ignore[arg-type]
    except KobakoError as exc:
        _err(exc)
        _remove_quietly(store, record, images)
        return getattr(exc, "exit_code", 125) if isinstance(exc, service.StartFailed) else 125
    if opts.detach:
        sock.close()
        print(record.id)
        return 0
    from kobako.cli.containers_io import attach_loop

    try:
        code = attach_loop(sock, reader, pending, stdin=bool(opts.interactive), tty=bool(opts.tty),
                           takeover=record.auto_remove)  # fmt: skip
    except KobakoError as exc:
        if record.auto_remove:
            sock.close()
        _err(exc)
        return 125
    if record.auto_remove:
        try:
            _remove_quietly(store, record, images, monitor=(sock, reader))
        finally:
            sock.close()
    return code


def _collect_garbage_again() -> None:
    """Turn the cyclic garbage collector back on if the CLI entry point turned it off for start-up
    (kobako.cli.main.GC_OFF); what exists now lives until exit, so it is frozen out of later collections."""
    import gc

    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _remove_quietly(store: ContainerStore, record: ContainerRecord, images: object | None = None,
                    monitor: tuple[object, object] | None = None) -> None:  # fmt: skip
    """Remove the container as `run` ends. ``images`` (the run's image service) is never closed, on purpose:
    the process exits right after, and a close would checkpoint the snapshot database (two fsyncs) and
    delete its WAL and shared-memory files (which the next open creates again), all on the critical path.
    Exiting with a connection open is a crash as far as SQLite is concerned, which it is built for: the next
    open recovers the few WAL frames this removal wrote (the run checkpointed the WAL before, so it holds
    nothing older), and the next run checkpoints them while its own task starts."""
    from kobako.engine import service

    try:
        service.remove(store, record, volumes=True, force=True, images=images, monitor=monitor)
    except KobakoError as exc:
        _err(f"while removing {record.id[:12]}: {exc}")


START_FLAGS = Flags(
    Flag("attach", "-a", "--attach", help="attach stdout/stderr and forward signals"),
    Flag("interactive", "-i", "--interactive", help="attach stdin"),
    Flag("help", "--help"),
)


def cmd_start(argv: list[str]) -> int:
    from kobako.engine import service, tasks

    opts, refs = START_FLAGS.parse(argv)
    if opts.help or not refs:
        print("usage: kobako start [OPTIONS] CONTAINER [CONTAINER...]\n\n" + START_FLAGS.usage())
        return 0 if opts.help else 125
    if (opts.attach or opts.interactive) and len(refs) > 1:
        raise InvalidArgument("you cannot start and attach multiple containers at once")
    store = _store()
    failed = 0
    from kobako.engine.monitor_fork import Prefork

    for ref in refs:
        prefork = Prefork()
        try:
            record = store.get(ref)
            if tasks.observe(store, record.id).status in ("running", "paused"):
                prefork.cancel()
                print(ref)
                continue
            sock, reader, pending = service.start(store, record, prefork)
        except KobakoError as exc:
            prefork.cancel()
            _err(exc)
            failed = getattr(exc, "exit_code", 1) if opts.attach else 1
            continue
        if opts.attach or opts.interactive:
            from kobako.cli.containers_io import attach_loop

            return attach_loop(sock, reader, pending, stdin=bool(opts.interactive), tty=record.tty)
        sock.close()
        print(ref)
    return failed


STOP_FLAGS = Flags(
    Flag("time", "-t", "--time", "--timeout", value=True, help="seconds to wait before killing"),
    Flag("signal", "-s", "--signal", value=True, help="signal to send (default: the image's StopSignal)"),
    Flag("help", "--help"),
)


def _each(refs: list[str], action: object, usage: str) -> int:
    """Apply ``action(store, record, ref)`` to each container; errors are reported and make the exit 1."""
    if not refs:
        raise InvalidArgument(f"{usage}: needs at least one container")
    store = _store()
    code = 0
    for ref in refs:
        try:
            record = store.get(ref)
            action(store, record, ref)  # type: ignore[operator]
        except KobakoError as exc:
            _err(exc)
            code = 1
    return code


def cmd_stop(argv: list[str]) -> int:
    return _stop(argv, "stop")


def cmd_restart(argv: list[str]) -> int:
    return _stop(argv, "restart")


def _stop(argv: list[str], verb: str) -> int:
    from kobako.engine import control, service

    opts, refs = STOP_FLAGS.parse(argv)
    if opts.help:
        print(f"usage: kobako {verb} [OPTIONS] CONTAINER [CONTAINER...]\n\n" + STOP_FLAGS.usage())
        return 0
    if opts.time is not None and not str(opts.time).lstrip("-").isdigit():
        raise InvalidArgument(f"invalid --time {opts.time!r}: a number of seconds")

    def act(store: ContainerStore, record: ContainerRecord, ref: str) -> None:
        control.stop(store, record, None if opts.time is None else int(str(opts.time)), opts.signal)  # type: ignore[arg-type]
        if verb == "restart":
            sock, _reader, _pending = service.start(store, record)
            sock.close()
        print(ref)

    return _each(refs, act, f"kobako {verb}")


KILL_FLAGS = Flags(
    Flag("signal", "-s", "--signal", value=True, help="signal to send (default KILL)"), Flag("help", "--help")
)


def cmd_kill(argv: list[str]) -> int:
    from kobako.engine import control
    from kobako.runtime import signals

    opts, refs = KILL_FLAGS.parse(argv)
    signals.parse(str(opts.signal or "KILL"))  # a bad signal fails before any container is touched

    def act(store: ContainerStore, record: ContainerRecord, ref: str) -> None:
        control.kill(store, record, opts.signal)  # type: ignore[arg-type]
        print(ref)

    return _each(refs, act, "kobako kill")


RM_FLAGS = Flags(
    Flag("force", "-f", "--force", help="kill a running container first"),
    Flag("volumes", "-v", "--volumes", help="remove its anonymous volumes"),
    Flag("help", "--help"),
)


def cmd_rm(argv: list[str]) -> int:
    from kobako.engine import control

    opts, refs = RM_FLAGS.parse(argv)

    def act(store: ContainerStore, record: ContainerRecord, ref: str) -> None:
        control.remove(store, record, force=bool(opts.force), volumes=bool(opts.volumes))
        print(ref)

    return _each(refs, act, "kobako rm")


def cmd_wait(argv: list[str]) -> int:
    from kobako.engine import tasks

    def act(store: ContainerStore, record: ContainerRecord, ref: str) -> None:
        st = tasks.wait_exit(store, record.id, statuses=("running", "paused", "starting"))
        print(st.exit_code)

    return _each(argv, act, "kobako wait")


def cmd_rename(argv: list[str]) -> int:
    if len(argv) != 2:
        raise InvalidArgument("usage: kobako rename CONTAINER NEW_NAME")
    store = _store()
    record = store.get(argv[0])
    with store.lock(record.id):
        store.rename(store.load(record.id), argv[1])
    return 0


def cmd_pause(argv: list[str]) -> int:
    return _freeze(argv, True)


def cmd_unpause(argv: list[str]) -> int:
    return _freeze(argv, False)


def _freeze(argv: list[str], pause: bool) -> int:
    from kobako import paths
    from kobako.engine import tasks
    from kobako.errors import Conflict
    from kobako.runtime.lifecycle.pause import pause as do_pause
    from kobako.runtime.lifecycle.pause import resume

    def act(store: ContainerStore, record: ContainerRecord, ref: str) -> None:
        with store.lock(record.id):
            status = tasks.observe(store, record.id).status
            if pause and status != "running":
                raise Conflict(f"container {record.id[:12]} is not running")
            if not pause and status != "paused":
                raise Conflict(f"container {record.id[:12]} is not paused")
            (do_pause if pause else resume)(paths.runtime_root(), record.id)
        print(ref)

    return _each(argv, act, "kobako pause" if pause else "kobako unpause")


def cmd_prune(argv: list[str]) -> int:
    from kobako.engine import service, tasks
    from kobako.engine.containers import ContainerRecord

    Flags(Flag("force", "-f", "--force"), Flag("help", "--help")).parse(argv)  # -f: nothing to confirm
    store = _store()
    removed = []
    for record in store.list():
        if tasks.observe(store, record.id).status in tasks.ACTIVE:
            continue
        try:
            with store.lock(record.id):
                service.remove(store, record, volumes=False)
            removed.append(record.id)
        except KobakoError as exc:
            _err(exc)
    for cid in store.orphan_dirs():  # a create killed before its record was written
        try:
            service.remove(store, ContainerRecord(cid, ""), volumes=False, force=True)
        except KobakoError as exc:
            _err(exc)
    print("Deleted Containers:")
    for cid in removed:
        print(cid)
    print("\nTotal reclaimed space: 0B")
    return 0

"""The per-container monitor (kobako's conmon): one small process per started container.

``Prefork`` (in the CLI, first thing in `run`/`start`) makes a socketpair and a go-pipe and double-forks —
fork, setsid, fork — so the monitor is no child of the CLI, has no terminal, outlives it, and holds only the
memory of a CLI that has not yet loaded the image store; no new interpreter is started. While the CLI
prepares the container, it preloads the runtime on the other core, then waits for ``go`` (the record id).
Then it:

1. becomes a child subreaper, so the container init (the runtime's grandchild) is reparented to it and it
   can wait for it; exec'd health checks end up its children the same way;
2. creates and starts the task through the runtime library with stdio on pipes it holds (or a pty whose
   master arrives over a console socketpair, for -t), and reports STARTED or ERROR on the socket;
3. loops on poll(): container output → ``ctr.log`` (kobako.engine.logs) and every attached client
   (frames, kobako.engine.attach); client stdin → the container; SIGCHLD and SIGUSR2 arrive through a
   wakeup pipe; timers run health checks and delayed restarts;
4. when the init exits: drains the output, reads OOM kills from the memory cgroup, and either deletes the
   runtime state and schedules a restart (policy + back-off, kobako.engine.restart), or unmounts the
   rootfs, writes the final state, sends EXIT (with --rm, an attached client may answer TAKEOVER and
   remove the container itself, its image store being loaded; else the monitor removes it), and deletes
   the runtime state and cgroup last, off the client's critical path.

Its state goes to ``state.json`` (kobako.engine.tasks); its own failures to ``monitor.log``.
"""

from __future__ import annotations

import os
import time

from kobako import paths
from kobako.engine import attach, tasks
from kobako.engine.clock import rfc3339
from kobako.engine.monitor_io import Streams
from kobako.errors import KobakoError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from kobako.engine.containers import ContainerRecord, ContainerStore

SIGCHLD, SIGUSR2 = 17, 12
PYTHON_IGNORED = (13, 25)  # SIGPIPE, SIGXFSZ: Python sets both to SIG_IGN at start-up


def _noop(_signum: int, _frame: object) -> None:
    pass


class Monitor(Streams):
    def __init__(self, store: ContainerStore, record: ContainerRecord, sock: socket.socket) -> None:
        from kobako.engine.logs import LOG, LogWriter

        self.store = store
        self.rec = record
        self.root = paths.runtime_root()
        self.clients: list[socket.socket] = [sock]
        self.readers = {sock.fileno(): attach.FrameReader()}
        sock.settimeout(5.0)  # a client that stops reading for 5 s is dropped, the container is not stalled
        self.stdin_client = sock if record.interactive else None
        self.log = LogWriter(store.path(record.id, LOG))
        self.st = tasks.load(store, record.id)
        self.pid = 0
        self.cgroup = ""
        self.started = 0.0
        self.done = False
        self.restart_at = 0.0
        self.stdin_pending = b""
        self.master = -1  # pty master (-t)
        self.in_r = self.in_w = -1
        self.out: dict[int, str] = {}  # output fd → stream name
        self.health = None
        # A plan (monitor_net.PLAN) means real networking: set up before the first create, torn down at the end.
        self.networked = os.path.exists(store.path(record.id, "network.json"))
        self.net_ready = False
        from kobako.engine.restart import Backoff

        self.backoff = Backoff()

    # --- set-up -----------------------------------------------------------------------------------

    def run(self) -> None:
        import _signal

        from kobako.runtime import syscalls as sc

        sc.linux.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(self.wake_r, False)
        _signal.set_wakeup_fd(wake_w)
        # HUP INT QUIT TERM do not end the monitor (its container does). Handlers, not SIG_IGN: an ignored
        # signal stays ignored across execve, and the container's shell could not trap it.
        for signum in (SIGCHLD, SIGUSR2, 1, 2, 3, 15):
            _signal.signal(signum, _noop)
        self.st.monitor_pid = os.getpid()
        self.st.monitor_start = tasks.process_start_time(self.st.monitor_pid)
        if not self.rec.tty:
            self.out_r, self.out_w = os.pipe2(os.O_CLOEXEC)
            self.err_r, self.err_w = os.pipe2(os.O_CLOEXEC)
            for fd in (self.out_r, self.err_r):
                os.set_blocking(fd, False)
            self.out = {self.out_r: "stdout", self.err_r: "stderr"}
            if self.rec.interactive:
                self.in_r, self.in_w = os.pipe2(os.O_CLOEXEC)
        try:
            self.start_task()
        except KobakoError as exc:
            self.fail(exc)
            return
        self.loop()

    def start_task(self) -> None:
        import _signal

        from kobako.runtime.lifecycle.create import CreateOptions, create
        from kobako.runtime.lifecycle.delete import delete
        from kobako.runtime.lifecycle.start import release
        from kobako.runtime.state import StateDir

        delete(self.root, self.rec.id, force=True)  # a runtime state left by a crashed earlier run
        self.st.status = "starting"
        tasks.save(self.store, self.rec.id, self.st)
        if self.networked and not self.net_ready:  # once per monitor: policy restarts keep the namespace
            from kobako.engine import monitor_net

            monitor_net.setup(self.store, self.rec)
            self.net_ready = True
        ours = theirs = None
        opts = CreateOptions(bundle=self.store.bundle(self.rec.id), detach=True)
        if self.rec.tty:
            import socket

            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            opts.console_fd = theirs.fileno()
        else:
            os.dup2(self.in_r if self.in_r >= 0 else 0, 0)
            os.dup2(self.out_w, 1)
            os.dup2(self.err_w, 2)
        # An ignored signal survives execve: the container must get the defaults Python took away.
        for signum in PYTHON_IGNORED:
            _signal.signal(signum, _signal.SIG_DFL)
        try:
            state = create(self.root, self.rec.id, opts)
        finally:
            for signum in PYTHON_IGNORED:
                _signal.signal(signum, _signal.SIG_IGN)
            devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.close(devnull)
            if theirs is not None:
                theirs.close()
        if ours is not None:
            import socket

            _msg, fds, _flags, _addr = socket.recv_fds(ours, 64, 1)
            ours.close()
            self.master = fds[0]
            os.set_blocking(self.master, False)
            self.out = {self.master: "stdout"}
        self.pid, self.cgroup = state.pid, state.cgroup_path
        release(StateDir(self.root, self.rec.id), state)
        self.started = time.monotonic()
        st = self.st
        st.status, st.pid, st.pid_start = "running", state.pid, state.pid_start
        st.started_at, st.exit_code, st.oom_killed, st.error = rfc3339(), 0, False, ""
        if self.rec.healthcheck:
            from kobako.engine import health

            self.health = health.Runner(self, self.rec.healthcheck)
            st.health = self.health.state.to_dict()
        tasks.save(self.store, self.rec.id, st)
        self.broadcast(attach.STARTED, str(state.pid).encode())
        if self.net_ready:
            from kobako.engine import monitor_net

            monitor_net.accelerate(self.rec.id)  # off the start's critical path: the bridge works meanwhile

    def fail(self, exc: KobakoError) -> None:
        """The task did not start: say why (exit code 125/126/127 like docker) and leave nothing running."""
        message = str(exc)
        lowered = message.lower()
        code = 127 if ("not found" in lowered or "no such file" in lowered) else 125
        if "permission denied" in lowered:
            code = 126
        code = getattr(exc, "start_code", code)
        self.st.status, self.st.exit_code, self.st.error, self.st.pid = "created", code, message, 0
        self.finish(code, error=True)
        self.broadcast(attach.ERROR, f"{code} {message}".encode())

    # --- the loop ---------------------------------------------------------------------------------

    def loop(self) -> None:
        import select

        while not self.done:
            poller = select.poll()
            poller.register(self.wake_r, select.POLLIN)
            for fd in self.out:
                poller.register(fd, select.POLLIN)
            for sock in self.clients:
                poller.register(sock.fileno(), select.POLLIN)
            target = self.master if self.master >= 0 else self.in_w
            if self.stdin_pending and target >= 0:
                poller.register(target, select.POLLOUT)
            if self.health is not None:
                self.health.register(poller)
            for fd, events in poller.poll(self.timeout_ms()):
                self.dispatch(fd, events)
            self.reap()
            self.timers()

    def timeout_ms(self) -> int:
        deadlines = [self.restart_at] if self.restart_at else []
        if self.health is not None and self.pid:
            deadlines.append(self.health.deadline())
        if not deadlines:
            return -1
        return max(0, int((min(deadlines) - time.monotonic()) * 1000) + 1)

    def dispatch(self, fd: int, events: int) -> None:
        if fd == self.wake_r:
            try:
                os.read(self.wake_r, 512)
            except BlockingIOError:
                pass
        elif fd in self.out:
            self.pump(fd)
        elif self.health is not None and self.health.owns(fd):
            self.health.read(fd)
        elif fd in (self.master, self.in_w) and events & 4:  # POLLOUT
            self.write_stdin(b"")
        else:
            for sock in list(self.clients):
                if sock.fileno() == fd:
                    self.from_client(sock)

    # --- children and timers ----------------------------------------------------------------------

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            code = code if code >= 0 else 128 - code  # killed by a signal: 128 + its number, as shells say
            if pid == self.pid:
                self.exited(code)
            elif self.health is not None:
                self.health.exited(pid, code)

    def timers(self) -> None:
        now = time.monotonic()
        if self.restart_at and (now >= self.restart_at or self.stop_requested()):
            self.restart_at = 0.0
            if self.stop_requested():
                self.finish(self.st.exit_code)
                return
            self.st.restart_count += 1
            try:
                self.start_task()
            except KobakoError as exc:
                self.st.error = str(exc)
                self.finish(self.st.exit_code)
        elif self.health is not None and self.pid:
            self.health.tick(now)

    def stop_requested(self) -> bool:
        return os.path.exists(self.store.path(self.rec.id, tasks.STOPPED_FLAG))

    def exited(self, code: int) -> None:
        from kobako.engine import restart
        from kobako.runtime.lifecycle.delete import delete

        for fd in list(self.out):
            while self.pump(fd):
                pass
        self.log.flush()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        oom = tasks.oom_killed(self.cgroup)
        if self.health is not None:
            self.health.cancel()
        self.pid = 0
        st = self.st
        st.exit_code, st.oom_killed, st.finished_at = code, oom, rfc3339()
        uptime = time.monotonic() - self.started
        if restart.should_restart(self.rec.restart_policy, code, st.restart_count, self.stop_requested()):
            delete(self.root, self.rec.id, force=True)  # before the next create of the same id
            self.restart_at = time.monotonic() + self.backoff.next_delay(uptime)
            st.status = "restarting"
            tasks.save(self.store, self.rec.id, st)
            self.broadcast(attach.EXIT, str(code).encode())
            for sock in list(self.clients):
                self.drop(sock)
            return
        if self.finish(code):
            return  # handed over, networked: the client deletes the runtime state meanwhile
        # Last, after the clients heard EXIT: removing the cgroup can wait out an RCU grace period on v1,
        # and the runtime state is only ours to delete (a new start waits until this monitor is gone).
        delete(self.root, self.rec.id, force=True)

    def finish(self, code: int, error: bool = False) -> bool:
        """The task is over for good: unmount, record, remove if --rm, tell the clients, and end. True if
        a client took the removal over (see handed_over)."""
        from kobako.engine import service

        self.done = True
        self.log.close()
        if not error:
            self.st.status = "exited"
        self.st.pid = 0
        # A --rm container with a client attached is about to be removed, by that client or by us: the
        # removal unmounts first, so unmounting here would only delay the client's EXIT.
        if error or not (self.rec.auto_remove and self.clients):
            try:
                service.unmount_rootfs(self.store, self.rec.id)
            except KobakoError as exc:
                self.st.error = self.st.error or str(exc)
        tasks.save(self.store, self.rec.id, self.st)
        if error:
            self.net_teardown()  # before ERROR: the client's removal must not race it
            return False
        if self.rec.auto_remove:
            if not self.handed_over(code):
                service.remove(self.store, self.rec, volumes=True)  # tears the network down too
                self.broadcast(attach.EXIT, str(code).encode())
                return False
            if not self.networked:
                return False  # we delete the runtime state while the client removes the rest
            # Networked: we tear the network down while the client removes the rest, runtime state
            # included (service.remove: it waits for NETDOWN, or for our end).
            failed = self.net_teardown(lazy=True, record=False)
            self.broadcast(attach.NETDOWN, failed.encode())
            return True
        self.broadcast(attach.EXIT, str(code).encode())
        self.net_teardown()  # after EXIT, off the client's critical path (rm waits for this monitor)
        return False

    def net_teardown(self, lazy: bool | None = None, record: bool = True) -> str:
        """Tear the network down; the error ("" if none), also kept in the task state when ``record``
        (a --rm container handed over to its client has no record dir for long)."""
        if not self.net_ready:
            return ""
        from kobako.engine import monitor_net

        self.net_ready = False
        try:
            monitor_net.teardown(self.store, self.rec.id, lazy=lazy)
        except KobakoError as exc:
            if record:
                self.st.error = self.st.error or f"network teardown: {exc}"
                tasks.save(self.store, self.rec.id, self.st)
            return str(exc)
        return ""

    def handed_over(self, code: int) -> bool:
        """--rm with a client attached: offer it the removal (its image store is loaded and warm, ours is
        not). It answers TAKEOVER; a client that vanishes or stays silent for 5 s leaves it to us."""
        import select

        self.broadcast(attach.EXIT, str(code).encode())
        deadline = time.monotonic() + 5
        while self.clients and time.monotonic() < deadline:
            sock = self.clients[0]
            if not select.select([sock], [], [], max(deadline - time.monotonic(), 0))[0]:
                break
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                self.drop(sock)
                continue
            if any(kind == attach.TAKEOVER for kind, _ in self.readers[sock.fileno()].feed(data)):
                return True
        return False

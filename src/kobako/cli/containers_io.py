"""`kobako` verbs that move bytes: the attach loop of run/start -a, exec and cp."""

from __future__ import annotations

import os

from kobako.cli.flags import Flag, Flags
from kobako.errors import InvalidArgument, KobakoError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket


def attach_loop(sock: socket.socket, reader: object, pending: list, stdin: bool, tty: bool,
                takeover: bool = False) -> int:  # fmt: skip
    """Relay the container's output (and our stdin with -i) until EXIT; the container's exit code.

    ``takeover`` (--rm): answer EXIT with TAKEOVER; the caller then removes the container, and owns the
    socket (the monitor reports NETDOWN on it when the network is torn down; see service.remove).

    Signals sent to us are forwarded to the container (docker's --sig-proxy); with -t the terminal is raw,
    so ^C travels as a byte, and window sizes follow SIGWINCH.
    """
    import _signal
    import select

    from kobako.engine import attach

    saved_tty = None
    if tty and stdin and os.isatty(0):
        import termios
        import tty as tty_mod

        saved_tty = termios.tcgetattr(0)
        tty_mod.setraw(0)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    caught: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        caught.append(signum)

    _signal.set_wakeup_fd(wake_w)
    for signum in (1, 2, 3, 10, 12, 15, 28):  # HUP INT QUIT USR1 USR2 TERM WINCH
        _signal.signal(signum, on_signal)
    try:
        if tty:  # the initial size (later ones follow SIGWINCH)
            size = _winsize()
            if size:
                attach.send_all(sock, attach.frame(attach.RESIZE, size))
        for kind, payload in pending:
            code = _output(kind, payload)
            if code is not None:
                return _exited(sock, code, takeover)
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        stdin_open = stdin
        if stdin:
            poller.register(0, select.POLLIN)
        while True:
            for fd, _ev in poller.poll():
                if fd == wake_r:
                    os.read(wake_r, 512)
                    while caught:
                        signum = caught.pop(0)
                        if signum == 28:
                            size = _winsize()
                            if size:
                                attach.send_all(sock, attach.frame(attach.RESIZE, size))
                        elif not tty:
                            attach.send_all(sock, attach.frame(attach.SIGNAL, str(signum).encode()))
                elif fd == 0 and stdin_open:
                    data = os.read(0, 65536)
                    if data:
                        attach.send_all(sock, attach.frame(attach.STDIN, data))
                    else:
                        stdin_open = False
                        poller.unregister(0)
                        attach.send_all(sock, attach.frame(attach.STDIN_CLOSE))
                elif fd == sock.fileno():
                    data = sock.recv(65536)
                    if not data:
                        raise KobakoError("lost the connection to the container's monitor")
                    for kind, payload in reader.feed(data):  # type: ignore[attr-defined]
                        code = _output(kind, payload)
                        if code is not None:
                            return _exited(sock, code, takeover)
    finally:
        _signal.set_wakeup_fd(-1)
        for signum in (1, 2, 3, 10, 12, 15, 28):
            _signal.signal(signum, _signal.SIG_DFL if signum != 2 else _signal.default_int_handler)
        os.close(wake_r)
        os.close(wake_w)
        if saved_tty is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved_tty)
        if not takeover:
            sock.close()


def _exited(sock: socket.socket, code: int, takeover: bool) -> int:
    if takeover:
        from kobako.engine import attach

        # The monitor still tears the network down and deletes the runtime state; removing the rest
        # meanwhile is safe (the removal waits for both before its last steps), so we go on at once.
        attach.send_all(sock, attach.frame(attach.TAKEOVER))
    return code


def _output(kind: int, payload: bytes) -> int | None:
    from kobako.engine import attach

    if kind == attach.STDOUT:
        _write(1, payload)
    elif kind == attach.STDERR:
        _write(2, payload)
    elif kind == attach.EXIT:
        return int(payload or b"0")
    return None


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            import select

            select.select([], [fd], [])


def _winsize() -> bytes:
    import fcntl
    import termios

    for fd in (0, 1):
        try:
            raw = fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8))
        except OSError:
            continue
        rows, cols = int.from_bytes(raw[0:2], "little"), int.from_bytes(raw[2:4], "little")
        if rows and cols:
            return f"{rows} {cols}".encode()
    return b""


EXEC_FLAGS = Flags(
    Flag("interactive", "-i", "--interactive", help="keep STDIN open"),
    Flag("tty", "-t", "--tty", help="allocate a pseudo-TTY"),
    Flag("detach", "-d", "--detach", help="run the command in the background"),
    Flag("env", "-e", "--env", value=True, many=True, help="set environment variables"),
    Flag("user", "-u", "--user", value=True, help="user[:group] (names from the container's /etc files)"),
    Flag("workdir", "-w", "--workdir", value=True, help="working directory inside the container"),
    Flag("privileged", "--privileged", help="give extended privileges to the command"),
    Flag("help", "--help"),
)


def cmd_exec(argv: list[str]) -> int:
    from kobako import paths
    from kobako.engine import tasks
    from kobako.engine.containers import ContainerStore

    opts, rest = EXEC_FLAGS.parse(argv, stop_at_positional=True)
    if opts.help or len(rest) < 2:
        print("usage: kobako exec [OPTIONS] CONTAINER COMMAND [ARG...]\n\n" + EXEC_FLAGS.usage())
        return 0 if opts.help else 125
    store = ContainerStore()
    record = store.get(rest[0])
    if tasks.observe(store, record.id).status != "running":
        raise KobakoError(f"container {record.id[:12]} is not running")
    proc = _exec_process(store, record, rest[1:], opts)
    root = paths.runtime_root()
    import _signal

    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal survives execve: give the process defaults.
    for signum in (13, 25):
        _signal.signal(signum, _signal.SIG_DFL)
    try:
        if opts.tty:
            return _exec_tty(root, record.id, proc, bool(opts.interactive), bool(opts.detach))
        return _exec_plain(root, record.id, proc, bool(opts.interactive), bool(opts.detach))
    except InvalidArgument as exc:
        return _exec_failed(exc)


def _exec_process(store: object, record: object, args: list[str], opts: object) -> dict:
    from kobako.engine.execs import process_spec

    env = []
    for item in opts.env:  # type: ignore[attr-defined]
        env.append(item if "=" in item else f"{item}={os.environ.get(item, '')}")
    return process_spec(store, record, args, tty=bool(opts.tty), env=env, workdir=opts.workdir or None,  # type: ignore[arg-type,attr-defined]
                        user=opts.user or None, privileged=bool(opts.privileged))  # type: ignore[attr-defined]  # fmt: skip


def _exec_failed(exc: KobakoError) -> int:
    import sys

    message = str(exc)
    sys.stderr.write(f"kobako: {message}\n")
    lowered = message.lower()
    return 127 if ("not found" in lowered or "no such file" in lowered) else 126


def _exec_plain(root: str, container_id: str, proc: dict, interactive: bool, detach: bool) -> int:
    from kobako.runtime.lifecycle.exec import ExecOptions, exec_process

    saved = -1
    if not interactive or detach:  # the process gets /dev/null, not our stdin
        saved = os.dup(0)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    try:
        if detach:
            out = os.open("/dev/null", os.O_WRONLY)
            saved_out = [os.dup(1), os.dup(2)]
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.close(out)
            try:
                return exec_process(root, container_id, ExecOptions(proc, detach=True))
            finally:
                os.dup2(saved_out[0], 1)
                os.dup2(saved_out[1], 2)
        return exec_process(root, container_id, ExecOptions(proc, detach=False))
    finally:
        if saved >= 0:
            os.dup2(saved, 0)
            os.close(saved)


def _exec_tty(root: str, container_id: str, proc: dict, interactive: bool, detach: bool) -> int:
    """-t: a console socket (a short /proc/self/fd path: sun_path holds 108 bytes) receives the pty."""
    import socket
    import tempfile

    from kobako.runtime import syscalls as sc
    from kobako.runtime.lifecycle.exec import ExecOptions, exec_process
    from kobako.runtime.lifecycle.run import wait_exit_code

    tmp = tempfile.mkdtemp(prefix="kobako-exec-")
    dirfd = os.open(tmp, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        path = f"/proc/self/fd/{dirfd}/console.sock"
        listener.bind(path)
        listener.listen(1)
        pid_file = os.path.join(tmp, "pid")
        if not detach:
            sc.linux.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)  # the process outlives its joiner: we reap it
        exec_process(
            root, container_id, ExecOptions(proc, detach=True, console_socket=path, pid_file=pid_file)
        )
        conn, _ = listener.accept()
        _msg, fds, _f, _a = socket.recv_fds(conn, 64, 1)
        conn.close()
        if detach:
            for fd in fds:
                os.close(fd)
            return 0
        with open(pid_file) as f:
            pid = int(f.read())
        _relay_pty(fds[0], interactive)
        return wait_exit_code(pid)
    finally:
        listener.close()
        os.close(dirfd)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _relay_pty(master: int, interactive: bool) -> None:
    import select

    saved = None
    if interactive and os.isatty(0):
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        poller = select.poll()
        poller.register(master, select.POLLIN)
        if interactive:
            poller.register(0, select.POLLIN)
        while True:
            for fd, _ev in poller.poll():
                if fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the last slave closed
                        return
                    if not data:
                        return
                    _write(1, data)
                else:
                    data = os.read(0, 65536)
                    if data:
                        os.write(master, data)
                    else:
                        poller.unregister(0)
                        os.write(master, b"\x04")
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)

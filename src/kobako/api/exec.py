"""Exec endpoints: create (a record kept in memory, as dockerd keeps it), start (hijacked), resize, inspect.

The process is built by kobako.engine.execs (as `kobako exec` builds it) and forked by the fork server's exec
runner, which joins the container and waits; this side only moves bytes: pipes for stdin, stdout and stderr
(framed as Docker's multiplexed stream), or the pty master (raw) that the runtime sends over a socketpair.
The stream ends once the process has exited and its output is drained; ``/exec/{id}/json`` then has the code.
"""

from __future__ import annotations

import asyncio
import os

from kobako.api.containers import record_of
from kobako.api.createopts import _flag, _get, _strs
from kobako.api.http import HTTPError, Request, Response, json_response
from kobako.api.streams import STDERR, STDOUT, Attached, hijack
from kobako.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from kobako.api.app import Service

_KEEP_FINISHED = 300.0  # seconds an ended exec stays inspectable


class ExecSession:
    def __init__(self, container_id: str, body: dict) -> None:
        self.id = os.urandom(32).hex()
        self.container_id = container_id
        self.cmd = _strs(body, "Cmd") or []
        if not self.cmd:
            raise InvalidArgument("no exec command specified")
        self.tty = _flag(body, "Tty")
        self.stdin, self.stdout, self.stderr = (_flag(body, k) for k in ("AttachStdin", "AttachStdout",
                                                                           "AttachStderr"))  # fmt: skip
        self.env = [e for e in _strs(body, "Env") or [] if "=" in e]
        self.user = str(_get(body, "User", (str,), "") or "")
        self.workdir = str(_get(body, "WorkingDir", (str,), "") or "")
        self.privileged = _flag(body, "Privileged")
        if self.workdir and not self.workdir.startswith("/"):
            raise InvalidArgument(
                f"the working directory {self.workdir!r} is invalid, it needs to be absolute"
            )
        self.started = self.running = False
        self.exit_code: int | None = None
        self.master = -1
        self.size: tuple[int, int] | None = None
        self.done = asyncio.Event()

    def inspect(self) -> dict:
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code, "CanRemove": self.done.is_set(),
            "ContainerID": self.container_id, "DetachKeys": "", "OpenStdin": self.stdin,
            "OpenStdout": self.stdout, "OpenStderr": self.stderr, "Pid": 0,
            "ProcessConfig": {"tty": self.tty, "entrypoint": self.cmd[0], "arguments": self.cmd[1:],
                              "privileged": self.privileged, "user": self.user},
        }  # fmt: skip

    def apply_size(self) -> None:
        if self.master >= 0 and self.size:
            import fcntl
            import termios

            rows, cols = self.size
            fcntl.ioctl(
                self.master,
                termios.TIOCSWINSZ,
                rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4),
            )


def _session(svc: Service, exec_id: str) -> ExecSession:
    session = svc.execs.get(exec_id)
    if session is None:
        raise NotFound(f"No such exec instance: {exec_id}")
    return session  # type: ignore[return-value]


async def create(svc: Service, req: Request) -> Response:
    from kobako.engine import tasks

    record = await record_of(svc, req.params["id"])
    body = await req.json()
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: the exec config must be an object")
    session = ExecSession(record.id, body)
    st = await svc.run(tasks.observe, svc.store, record.id)
    if st.status != "running":  # type: ignore[attr-defined]
        raise Conflict(f"container {record.id} is not running")
    svc.execs[session.id] = session
    svc.events.emit("container", f"exec_create: {' '.join(session.cmd)}", record.id, {"name": record.name})
    return json_response({"Id": session.id}, 201)


async def inspect(svc: Service, req: Request) -> Response:
    return json_response(_session(svc, req.params["id"]).inspect())


async def resize(svc: Service, req: Request) -> Response:
    session = _session(svc, req.params["id"])
    rows, cols = req.integer("h", 0), req.integer("w", 0)
    if not 0 < rows < 65536 or not 0 < cols < 65536:
        raise HTTPError(400, f"invalid size {rows}x{cols}: h and w must be between 1 and 65535")
    session.size = (rows, cols)
    session.apply_size()
    return Response(200, b"", "text/plain")


async def start(svc: Service, req: Request) -> Response | None:
    from kobako import paths
    from kobako.engine import execs

    session = _session(svc, req.params["id"])
    body = await req.json(required=False) or {}
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: the exec start config must be an object")
    detach = _flag(body, "Detach")
    if session.started:
        raise Conflict(f"exec {session.id[:12]} has already been started")
    record = await record_of(svc, session.container_id)
    proc = await svc.run(execs.process_spec, svc.store, record, session.cmd, tty=session.tty, env=session.env,
                         workdir=session.workdir or None, user=session.user or None,
                         privileged=session.privileged)  # fmt: skip
    session.started = session.running = True
    ours, theirs = _plumbing(session, detach)
    try:
        svc.forks.exec({"root": paths.runtime_root(), "id": record.id, "process": proc}, theirs)
    finally:
        for fd in theirs:
            os.close(fd)
    svc.events.emit("container", f"exec_start: {' '.join(session.cmd)}", record.id, {"name": record.name})
    if detach:
        asyncio.get_running_loop().create_task(_finish(svc, session, ours, None))
        return Response(200, b"", "text/plain")
    await hijack(req.writer, req.headers, svc.common_headers(), session.tty, req.api_version)
    req.hijacked = True
    client = Attached(req.reader, req.writer, session.tty, session.stdin, session.stdout, session.stderr)
    await _finish(svc, session, ours, client)
    return None


def _plumbing(session: ExecSession, detach: bool) -> tuple[dict[str, object], list[int]]:
    """Our ends and the runner's (stdin, stdout, stderr, status[, console]) of the exec's descriptors."""
    import socket

    ours: dict[str, object] = {}
    null_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    null_w = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
    theirs = [null_r, null_w, os.dup(null_w)]
    if session.tty:
        mine, console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours["console"] = mine
    elif not detach:
        for i, (name, wanted) in enumerate((("stdin", session.stdin), ("stdout", session.stdout),
                                            ("stderr", session.stderr))):  # fmt: skip
            if wanted:
                r, w = os.pipe2(os.O_CLOEXEC)
                os.close(theirs[i])
                theirs[i], ours[name] = (r, w) if i == 0 else (w, r)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    ours["status"] = status_r
    theirs.append(status_w)
    if session.tty:
        theirs.append(os.dup(console.fileno()))
        console.close()
    return ours, theirs


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def _copy_out(fd: int, sink: Callable[[bytes], Awaitable[object]]) -> None:
    """Everything from ``fd`` into ``sink`` until EOF (EIO from a pty whose last slave closed is EOF too)."""
    os.set_blocking(fd, False)
    try:
        while True:
            await _readable(fd)
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    return
                await sink(data)
    finally:
        os.close(fd)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut = loop.create_future()
    loop.add_writer(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_writer(fd)


async def _write_all(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            await _writable(loop, fd)


async def _copy_in(client: Attached, fd: int, tty: bool) -> None:
    """The client's raw stdin into the process; its EOF closes the pipe (a tty gets ^D)."""
    os.set_blocking(fd, False)
    try:
        while True:
            try:
                data = await client.reader.read(65536)
            except (OSError, ConnectionError):
                data = b""
            if not data:
                if tty:
                    await _write_all(fd, b"\x04")
                return
            await _write_all(fd, data)
    except OSError:
        return  # the process closed its stdin or ended
    finally:
        if not tty:
            os.close(fd)


async def _finish(
    svc: Service, session: ExecSession, ours: dict[str, object], client: Attached | None
) -> None:
    loop = asyncio.get_running_loop()
    jobs = []
    status: list[bytes] = []

    async def collect(data: bytes) -> None:
        status.append(data)

    jobs.append(loop.create_task(_copy_out(ours.pop("status"), collect)))  # type: ignore[arg-type]
    stdin_job = None
    if session.tty:
        import socket

        console = ours.pop("console")
        try:
            _msg, fds, _f, _a = await asyncio.wait_for(
                loop.run_in_executor(svc.executor, socket.recv_fds, console, 64, 1), 30)  # fmt: skip
        except (TimeoutError, OSError):
            fds = []
        finally:
            console.close()  # type: ignore[attr-defined]
        if fds:
            session.master = fds[0]
            session.apply_size()
            if client is not None:
                jobs.append(
                    loop.create_task(_copy_out(os.dup(session.master), lambda d: client.send(STDOUT, d)))
                )
                if session.stdin:
                    stdin_job = loop.create_task(_copy_in(client, os.dup(session.master), True))
    else:
        for name, stream in (("stdout", STDOUT), ("stderr", STDERR)):
            if name in ours and client is not None:
                fd = ours.pop(name)
                jobs.append(loop.create_task(_copy_out(fd, lambda d, s=stream: client.send(s, d))))  # type: ignore[misc]
        if "stdin" in ours and client is not None:
            stdin_job = loop.create_task(_copy_in(client, ours.pop("stdin"), False))  # type: ignore[arg-type]
    for leftover in ours.values():
        os.close(leftover) if isinstance(leftover, int) else leftover.close()  # type: ignore[attr-defined]
    try:
        await asyncio.gather(*jobs)
    finally:
        if stdin_job is not None:
            stdin_job.cancel()
        if session.master >= 0:
            os.close(session.master)
            session.master = -1
        text = b"".join(status).decode(errors="replace").strip()
        code_text = text.partition(" ")[0]
        session.exit_code = int(code_text) if code_text.lstrip("-").isdigit() else 126
        session.running = False
        session.done.set()
        if client is not None:
            await client.finish()
        svc.events.emit("container", "exec_die", session.container_id, {"exitCode": str(session.exit_code)})
        loop.call_later(_KEEP_FINISHED, svc.execs.pop, session.id, None)


ROUTES = [
    ("POST", "/containers/{id}/exec", create),
    ("POST", "/exec/{id}/start", start),
    ("POST", "/exec/{id}/resize", resize),
    ("GET", "/exec/{id}/json", inspect),
]

"""The service's side of each container it started: the monitor's attach socket, attached clients, exits.

A start through the API hands the service the monitor's attach socket (kobako.engine.attach frames), as `kobako
run` keeps it. The service pumps it on the event loop for as long as the monitor keeps it: output goes to every
hijacked attach client, their stdin and tty sizes go back, and EXIT wakes the `wait` requests at once. An
auto-remove container is then taken over (TAKEOVER) and removed here, where the image store is warm, before
``wait?condition=removed`` answers. Clients may attach before the start (docker run does): they wait here.

A container started elsewhere (by `kobako run -d`) has no socket here: waits fall back to observing its state,
and attaching to it streams nothing until it is restarted through the API.
"""

from __future__ import annotations

import asyncio
import logging

from kobako.api.streams import STDERR, STDOUT, Attached
from kobako.engine import attach

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Awaitable, Callable

log = logging.getLogger("kobako.api")


class Task:
    def __init__(self, container_id: str) -> None:
        self.id = container_id
        self.clients: list[Attached] = []
        self.sock: socket.socket | None = None
        self.started = asyncio.Event()
        self.exits = 0  # EXIT frames seen: a `wait next-exit` compares against the count it registered at
        self.exit_code: int | None = None
        self.removed = False
        self.remove_error = ""
        self.users = 0  # waits and attaches holding this entry
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, timeout: float) -> None:
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    async def send(self, kind: int, payload: bytes = b"") -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            await asyncio.get_running_loop().sock_sendall(sock, attach.frame(kind, payload))
        except OSError:
            pass


class Monitors:
    def __init__(self, remove: Callable[[str], Awaitable[str]], on_exit: Callable[[str, int], None]) -> None:
        self.tasks: dict[str, Task] = {}
        self._remove = remove  # container id → "" or the error removing it
        self._on_exit = on_exit

    def get(self, container_id: str) -> Task:
        task = self.tasks.get(container_id)
        if task is None:
            task = self.tasks[container_id] = Task(container_id)
        return task

    def release(self, task: Task) -> None:
        task.users -= 1
        self._forget(task)

    def _forget(self, task: Task) -> None:
        if task.users <= 0 and task.sock is None and not task.clients and self.tasks.get(task.id) is task:
            del self.tasks[task.id]

    def started(self, container_id: str, sock: socket.socket, pending: list, reader: attach.FrameReader,
                auto_remove: bool) -> None:  # fmt: skip
        task = self.get(container_id)
        if task.sock is not None:  # the previous run's monitor is finishing: it has our last EXIT already
            task.sock.close()
        sock.setblocking(False)
        task.sock = sock
        task.removed, task.remove_error = False, ""
        task.started.set()
        asyncio.get_running_loop().create_task(self._pump(task, sock, reader, pending, auto_remove))

    async def _pump(self, task: Task, sock: socket.socket, reader: attach.FrameReader, pending: list,
                    auto_remove: bool) -> None:  # fmt: skip
        loop = asyncio.get_running_loop()
        frames = list(pending)
        exited = False  # the monitor repeats EXIT (before and after an auto-remove): the first one counts
        try:
            while True:
                for kind, payload in frames:
                    if kind in (attach.STDOUT, attach.STDERR):
                        stream = STDOUT if kind == attach.STDOUT else STDERR
                        for client in list(task.clients):
                            if not await client.send(stream, payload):
                                self.detach(task, client)
                    elif kind == attach.EXIT and not exited:
                        exited = True
                        await self._exited(task, sock, int(payload or b"0"), auto_remove)
                frames = []
                try:
                    data = await loop.sock_recv(sock, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                frames = reader.feed(data)
        except Exception:  # never let one container's pump take the service down
            log.exception("attach pump of %s failed", task.id[:12])
        finally:
            if task.sock is sock:
                task.sock = None
            sock.close()
            for client in list(task.clients):
                await client.finish()
            task.clients.clear()
            task.started = asyncio.Event()
            task.changed()
            self._forget(task)

    async def _exited(self, task: Task, sock: socket.socket, code: int, auto_remove: bool) -> None:
        task.exit_code = code
        task.exits += 1
        for client in list(task.clients):
            await client.finish()  # the output is complete; the CLI reads EOF, then the wait result
        task.clients.clear()
        self._on_exit(task.id, code)
        if auto_remove:
            try:
                await asyncio.get_running_loop().sock_sendall(sock, attach.frame(attach.TAKEOVER))
            except OSError:
                pass  # the monitor removes it itself then
            task.remove_error = await self._remove(task.id)
            task.removed = True
        task.changed()

    def detach(self, task: Task, client: Attached) -> None:
        if client in task.clients:
            task.clients.remove(client)
        client.close()

    async def pump_stdin(self, task: Task, client: Attached) -> None:
        """The client's raw stdin → STDIN frames (after the start); its EOF → STDIN_CLOSE."""
        await task.started.wait()
        while not client.closed.is_set():
            try:
                data = await client.reader.read(65536)
            except (OSError, ConnectionError):
                data = b""
            if not data:
                await task.send(attach.STDIN_CLOSE)
                return
            log.debug("stdin %r", data[:50])
            await task.send(attach.STDIN, data)

    async def resize(self, container_id: str, rows: int, cols: int) -> bool:
        task = self.tasks.get(container_id)
        if task is None or task.sock is None:
            return False
        await task.send(attach.RESIZE, f"{rows} {cols}".encode())
        return True

    def close(self) -> None:
        for task in list(self.tasks.values()):
            if task.sock is not None:
                task.sock.close()  # the monitor drops us; containers keep running
            for client in task.clients:
                client.close()
        self.tasks.clear()

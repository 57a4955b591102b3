"""The Docker-compatible Engine API service: HTTP/1.1 on a unix socket (or a TCP address when asked), asyncio.

Why our own small HTTP parser (kobako.api.http) and not an ASGI server: attach and exec *hijack* the
connection (``101 UPGRADED``, then raw stdin one way and framed output the other, half-closes included).
ASGI has no way to hand a handler the raw socket (only its websocket protocol), so uvicorn or hypercorn would
need private hooks; the subset of HTTP/1.1 Docker clients speak (keep-alive, Content-Length and chunked
bodies, chunked streaming responses) is small enough to own, and starting it costs no third-party imports.

Shape: one coroutine per connection reads requests, routes them by method and path (versioned ``/v1.NN``
prefixes accepted from 1.24 to 1.45), and runs the handler; blocking engine calls go to a thread pool.
Forks never happen in this (threaded) process: a fork server made at start-up forks monitors and exec
runners (kobako.engine.forkserver). Errors become Docker's JSON with Docker's codes (kobako.api.errors); a bad
request never ends the service.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time

from kobako import __version__, paths
from kobako.api import errors
from kobako.api.http import HTTPError, Request, Response, Stream, head, json_response, read_request

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.engine.forkserver import ForkServer

API_VERSION = "1.45"
MIN_API_VERSION = "1.24"
log = logging.getLogger("kobako.api")
Handler = "Callable[[Service, Request], Awaitable[Response | None]]"


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


class Router:
    """Routes like ``/containers/{id}/json``; ``{name*}`` takes one or more segments (image names have "/")."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, list[str], object]] = []

    def add(self, method: str, pattern: str, handler: object) -> None:
        self.routes.append((method, pattern.strip("/").split("/"), handler))

    def match(self, method: str, path: str) -> tuple[object, dict[str, str]]:
        parts = path.strip("/").split("/")
        allowed = False
        for m, pattern, handler in self.routes:
            params = _match(pattern, parts)
            if params is None:
                continue
            if m == method or (m == "GET" and method == "HEAD"):
                return handler, params
            allowed = True
        if allowed:
            raise HTTPError(405, f"method {method} not allowed for {path}")
        raise HTTPError(404, "page not found")


def _match(pattern: list[str], parts: list[str]) -> dict[str, str] | None:
    greedy = next((i for i, p in enumerate(pattern) if p.endswith("*}")), -1)
    if greedy < 0:
        if len(pattern) != len(parts):
            return None
        pairs = list(zip(pattern, parts, strict=True))
        middle: dict[str, str] = {}
    else:
        before, after = pattern[:greedy], pattern[greedy + 1 :]
        if len(parts) < len(before) + len(after) + 1:
            return None
        rest = parts[len(before) : len(parts) - len(after)]
        pairs = list(zip(before, parts[: len(before)], strict=True))
        pairs += list(zip(after, parts[len(parts) - len(after) :], strict=True))
        middle = {pattern[greedy][1:-2]: "/".join(rest)}
    params = dict(middle)
    for p, value in pairs:
        if p.startswith("{"):
            if not value:
                return None
            params[p[1:-1]] = value
        elif p != value:
            return None
    return params


class Service:
    def __init__(self, forks: ForkServer) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from kobako.api.events import EventLog
        from kobako.api.monitors import Monitors
        from kobako.engine.containers import ContainerStore
        from kobako.engine.forkserver import MonitorPool

        self.store = ContainerStore()
        self.forks = forks
        self.pool = MonitorPool(forks)
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="kobako-api")
        os.makedirs(paths.run_root(), mode=0o711, exist_ok=True)
        self.events = EventLog(os.path.join(paths.run_root(), "events.log"))
        self.monitors = Monitors(self._remove_exited, self._exited)
        self.execs: dict[str, object] = {}
        self.router = Router()
        self.connections = 0
        self.last_active = time.monotonic()
        self._common = [("Api-Version", API_VERSION), ("Docker-Experimental", "false"), ("Ostype", "linux"),
                        ("Server", f"kobako/{__version__} (linux)")]  # fmt: skip
        from kobako.api import (
            build,
            containers,
            containers_io,
            events,
            exec,
            images,
            images_transfer,
            networks,
            system,
            volumes,
        )

        modules = (system, containers, containers_io, exec, images, images_transfer, build, networks, volumes)
        for module in modules:
            for method, pattern, handler in module.ROUTES:
                self.router.add(method, pattern, handler)
        self.router.add("GET", "/events", events.get_events)

    def common_headers(self) -> list[tuple[str, str]]:
        return list(self._common)

    async def run(self, fn: Callable[..., object], *args: object, **kwargs: object) -> object:
        """A blocking call on the thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    def stream(self, req: Request) -> Stream:
        req.streamed = True
        return Stream(req.writer, self.common_headers())

    # --- what the monitors report ---------------------------------------------------------------------

    async def _remove_exited(self, container_id: str) -> str:
        from kobako.engine import service
        from kobako.errors import KobakoError, NotFound

        try:
            record = await self.run(self.store.load, container_id)
            await self.run(service.remove, self.store, record, volumes=True, force=True)
        except NotFound:
            return ""
        except KobakoError as exc:
            return str(exc)
        self.events.emit("container", "destroy", container_id, {"name": record.name, "image": record.image})
        return ""

    def _exited(self, container_id: str, code: int) -> None:
        self.events.emit("container", "die", container_id, {"exitCode": str(code)})

    # --- connections ----------------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    req = await read_request(reader, writer)
                except HTTPError as exc:
                    await self._error(writer, exc, close=True)
                    return
                if req is None:
                    return
                self.last_active = time.monotonic()
                log.debug(
                    "%s %s?%s", req.method, req.path, "&".join(f"{k}={v[-1]}" for k, v in req.query.items())
                )
                keep = _keep_alive(req)
                try:
                    response = await self.dispatch(req)
                except Exception as exc:  # a handler's failure is the client's answer, never our end
                    if req.hijacked or req.streamed:
                        if errors.status_of(exc) >= 500:
                            log.warning("%s %s failed mid-stream: %s", req.method, req.path, exc)
                        return
                    if errors.status_of(exc) >= 500 and not isinstance(exc, (HTTPError,)):
                        log.error("%s %s: %s", req.method, req.path, exc, exc_info=exc)
                    close = not keep or req.must_close
                    await self._error(writer, exc, close=close, head_only=req.method == "HEAD")
                    if close or not await req.discard():
                        return
                    continue
                if req.hijacked:
                    return
                if response is not None:
                    self._write(writer, response, keep, req.method == "HEAD")
                    await writer.drain()
                if not keep or req.must_close or not await req.discard():
                    return
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except HTTPError:
            pass  # a malformed body met while discarding it: just close
        finally:
            self.connections -= 1
            self.last_active = time.monotonic()
            try:
                writer.close()
            except (OSError, RuntimeError):
                pass

    async def dispatch(self, req: Request) -> Response | None:
        path = req.path
        if path.startswith("/v") and "/" in path[1:]:
            first, _, rest = path[2:].partition("/")
            major, dot, minor = first.partition(".")
            if dot and major.isdigit() and minor.isdigit():
                version = f"{int(major)}.{int(minor)}"
                if _version_tuple(version) < _version_tuple(MIN_API_VERSION):
                    raise HTTPError(400, f"client version {first} is too old. Minimum supported API version is "
                                         f"{MIN_API_VERSION}, please upgrade your client to a newer version")  # fmt: skip
                if _version_tuple(version) > _version_tuple(API_VERSION):
                    raise HTTPError(400, f"client version {first} is too new. Maximum supported API version is "
                                         f"{API_VERSION}")  # fmt: skip
                req.api_version, path = version, "/" + rest
        if ".." in path.split("/"):
            raise HTTPError(400, f"invalid path {req.path!r}: '..' is not allowed")
        handler, params = self.router.match(req.method, path)
        req.params = params
        return await handler(self, req)  # type: ignore[operator]

    def _write(self, writer: asyncio.StreamWriter, response: Response, keep: bool, head_only: bool) -> None:
        headers = [*self._common, *response.headers]
        if response.status not in (204, 304):
            headers += [("Content-Type", response.content_type), ("Content-Length", str(len(response.body)))]
        if not keep:
            headers.append(("Connection", "close"))
        writer.write(head(response.status, headers))
        if response.body and not head_only and response.status not in (204, 304):
            writer.write(response.body)

    async def _error(self, writer: asyncio.StreamWriter, exc: BaseException, close: bool,
                     head_only: bool = False) -> None:  # fmt: skip
        response = json_response(errors.body_of(exc), errors.status_of(exc))
        self._write(writer, response, not close, head_only)
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            pass

    def close(self) -> None:
        self.monitors.close()
        self.pool.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _keep_alive(req: Request) -> bool:
    connection = req.headers.get("connection", "").lower()
    if req.http_version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def parse_address(address: str) -> tuple[str, str, int]:
    """``unix:///path`` → ("unix", path, 0); ``tcp://HOST:PORT`` → ("tcp", host, port)."""
    from kobako.errors import InvalidArgument

    if address.startswith("unix://"):
        path = address[len("unix://") :]
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid address {address!r}: want unix:///ABSOLUTE/PATH")
        return "unix", path, 0
    if address.startswith("tcp://"):
        host, sep, port = address[len("tcp://") :].rstrip("/").rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgument(f"invalid address {address!r}: want tcp://HOST:PORT")
        return "tcp", host.strip("[]"), int(port)
    raise InvalidArgument(f"invalid address {address!r}: want unix:///PATH or tcp://HOST:PORT")


def _claim_socket_path(path: str) -> None:
    """Make the directory; remove a stale socket (nobody answers on it); refuse a live one or a non-socket."""
    import socket
    import stat

    from kobako.errors import Conflict

    os.makedirs(os.path.dirname(path) or "/", mode=0o711, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise Conflict(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # stale: its server is gone
        return
    finally:
        probe.close()
    raise Conflict(f"{path} is in use by another service")


async def _main(address: str, idle: float, forks: ForkServer) -> None:
    import signal

    kind, where, port = parse_address(address)
    svc = Service(forks)
    if kind == "unix":
        _claim_socket_path(where)
        old = os.umask(0o117)  # the socket is born 0660: no window where others may connect
        try:
            server = await asyncio.start_unix_server(svc.handle, path=where, limit=1 << 16)
        finally:
            os.umask(old)
        os.chmod(where, 0o660)
    else:
        server = await asyncio.start_server(svc.handle, host=where, port=port, limit=1 << 16)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    loop.run_in_executor(svc.executor, svc.pool.refill)
    log.info("API listening on %s", address)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
            busy = svc.connections or any(t.sock is not None for t in svc.monitors.tasks.values())
            if idle > 0 and not busy and time.monotonic() - svc.last_active > idle:
                log.info("no client for %ss: exiting", idle)
                break
    finally:
        server.close()
        svc.close()
        if kind == "unix":
            try:
                os.unlink(where)
            except FileNotFoundError:
                pass


def serve(address: str, idle: float, forks: ForkServer) -> None:
    """Serve until SIGTERM/SIGINT, or until no client came for ``idle`` seconds (0: never)."""
    asyncio.run(_main(address, idle, forks))

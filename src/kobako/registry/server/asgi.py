"""Request and response plumbing on raw ASGI: headers, query, bounded or streamed bodies, files in chunks.

Bodies are never slurped unless bounded (manifests, 4 MiB); blobs go through :meth:`Request.chunks` and
:func:`send_file` with fixed buffers, and uvicorn's flow control makes ``send`` wait while the socket is full,
so memory stays flat whatever the blob size. When the server offers the ASGI ``http.response.pathsend``
extension a whole file is handed to it (the server may use sendfile).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl

from kobako.oci.digest import BUFSIZE
from kobako.oci.jsoncodec import dumps
from kobako.registry.server.errors import RegistryError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
    from typing import Any

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")
SEND_CHUNK = BUFSIZE


class ClientDisconnected(Exception):
    """The client went away in the middle of its request body."""


class Request:
    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: dict[str, str] = {}
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            self.query.setdefault(key, value)
        self.headers: dict[str, str] = {}
        for raw_key, raw_value in scope.get("headers", []):
            key, value = raw_key.decode("latin-1").lower(), raw_value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {value}" if key in self.headers else value
        self._receive = receive
        self.body_done = False
        self.user = ""  # set by the app once authenticated

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        if value is None:
            return None
        if not value.strip().isdigit():
            raise RegistryError("SIZE_INVALID", f"invalid Content-Length {value!r}")
        return int(value)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The request body as it arrives; ClientDisconnected if the connection drops before its end."""
        while not self.body_done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.body_done = True
                raise ClientDisconnected
            if not message.get("more_body", False):
                self.body_done = True
            body = message.get("body", b"")
            if body:
                yield body

    async def read(self, limit: int) -> bytes:
        """The whole body; 413 SIZE_INVALID past ``limit`` bytes (the rest is not read)."""
        declared = self.content_length()
        if declared is not None and declared > limit:
            raise RegistryError(
                "SIZE_INVALID", f"body of {declared} bytes is larger than {limit}", status=413
            )
        parts, size = [], 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise RegistryError("SIZE_INVALID", f"body is larger than {limit} bytes", status=413)
            parts.append(chunk)
        return b"".join(parts)


class Response:
    """A small response: status, headers, a body already in memory."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b""
    ) -> None:
        self.status = status
        self.headers = headers or []
        self.body = body


def json_response(status: int, obj: object, headers: list[tuple[bytes, bytes]] | None = None,
                  content_type: str = "application/json") -> Response:  # fmt: skip
    body = dumps(obj).encode()
    return Response(status, [(b"content-type", content_type.encode()), *(headers or [])], body)


def error_response(err: RegistryError) -> Response:
    return json_response(err.status, err.body(), err.headers)


class FileResponse:
    """A blob from disk: ``length`` bytes from ``offset`` of the open file ``f`` (closed after sending)."""

    __slots__ = ("f", "headers", "length", "offset", "path", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], f: Any, path: str, offset: int,
                 length: int) -> None:  # fmt: skip
        self.status = status
        self.headers = headers
        self.f = f
        self.path = path
        self.offset = offset
        self.length = length


async def send_response(scope: Scope, send: Send, resp: Response | FileResponse) -> None:
    headers = [API_VERSION_HEADER, *resp.headers]
    if isinstance(resp, FileResponse):
        try:
            await _send_file(scope, send, resp, headers)
        finally:
            resp.f.close()
        return
    if not any(k == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(len(resp.body)).encode()))
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else resp.body})


async def _send_file(
    scope: Scope, send: Send, resp: FileResponse, headers: list[tuple[bytes, bytes]]
) -> None:
    headers.append((b"content-length", str(resp.length).encode()))
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    if scope["method"] == "HEAD" or resp.length == 0:
        await send({"type": "http.response.body", "body": b""})
        return
    whole = resp.offset == 0 and resp.length == os.fstat(resp.f.fileno()).st_size
    if whole and "http.response.pathsend" in scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": resp.path})
        return
    fd = resp.f.fileno()
    pos, left = resp.offset, resp.length
    while left:
        # pread from the page cache is fast enough not to need a thread; a short read means a truncated
        # (corrupt) blob: stop, and the client sees a short body and a digest mismatch
        chunk = os.pread(fd, min(SEND_CHUNK, left), pos)
        if not chunk:
            raise OSError(f"{resp.path}: file shorter than its recorded size")
        pos += len(chunk)
        left -= len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})

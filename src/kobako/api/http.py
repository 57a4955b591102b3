"""A small HTTP/1.1 server-side protocol over asyncio streams: what the Docker Engine API needs, no more.

Requests: request line and headers (bounded: 8 KiB per line, 64 KiB and 100 headers in all), bodies by
Content-Length or chunked transfer coding (uploads of unknown size: `docker build`, `docker load`), read as a
stream or as JSON capped at 16 MiB. Responses: a whole body with Content-Length, or a chunked stream (logs,
events, progress), or a hijack: ``101 UPGRADED`` (``200 OK`` for clients that sent no Upgrade) after which
the handler owns both directions of the connection, as dockerd does for attach and exec.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, unquote

MAX_LINE = 8 * 1024
MAX_HEADERS = 64 * 1024
MAX_HEADER_COUNT = 100
MAX_JSON = 16 * 1024 * 1024
REASONS = {
    101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 411: "Length Required",
    413: "Request Entity Too Large", 415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
}  # fmt: skip


class HTTPError(Exception):
    """A request the server refuses before or outside any handler (malformed, too large, unknown route)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter, version: str) -> None:  # fmt: skip
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers  # lower-cased names
        self.reader = reader
        self.writer = writer
        self.http_version = version
        self.api_version = ""  # "1.45" from a /v1.45/ prefix, "" when the client gave none
        self.params: dict[str, str] = {}
        self.hijacked = False  # the handler took the connection over (attach, exec start)
        self.streamed = False  # a chunked response was started: errors can no longer be answered
        self.must_close = False  # the connection cannot carry another request
        self._length = -1  # bytes of body left; -2: chunked
        self._chunk_left = 0
        self._done = True
        te = headers.get("transfer-encoding", "").lower()
        cl = headers.get("content-length")
        if te and cl is not None:
            raise HTTPError(400, "both Content-Length and Transfer-Encoding given")
        if te:
            if te != "chunked":
                raise HTTPError(501, f"unsupported transfer encoding {te!r}")
            self._length, self._done = -2, False
        elif cl is not None:
            if not cl.isdigit() or len(cl) > 18:
                raise HTTPError(400, f"invalid Content-Length {cl!r}")
            self._length = int(cl)
            self._done = self._length == 0

    # --- query --------------------------------------------------------------------------------------

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """Docker's boolean query values: 1/true/True/yes; absent → default; 0/false/no/"" → False."""
        if name not in self.query:
            return default
        value = self.arg(name).strip().lower()
        if value in ("1", "true", "yes", "t"):
            return True
        if value in ("0", "false", "no", "f", ""):
            return False
        raise HTTPError(400, f"invalid boolean value {self.arg(name)!r} for query parameter {name!r}")

    def integer(self, name: str, default: int) -> int:
        raw = self.arg(name, "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError:
            raise HTTPError(400, f"invalid integer value {raw!r} for query parameter {name!r}") from None

    # --- body ---------------------------------------------------------------------------------------

    @property
    def has_body(self) -> bool:
        return not self._done

    async def chunk(self, size: int = 65536) -> bytes:
        """The next piece of the body; b"" at its end."""
        if self._done:
            return b""
        try:
            return await self._chunk(size)
        except HTTPError:
            self.must_close = True  # where the next request would start is unknown now
            self._done = True
            raise

    async def _chunk(self, size: int) -> bytes:
        if self._length >= 0:
            data = await self.reader.read(min(size, self._length))
            if not data:
                raise HTTPError(400, "request body ended early")
            self._length -= len(data)
            self._done = self._length == 0
            return data
        if self._chunk_left == 0:
            line = await _line(self.reader)
            size_text = line.split(b";", 1)[0].strip()
            try:
                self._chunk_left = int(size_text, 16)
            except ValueError:
                raise HTTPError(400, "malformed chunked request body") from None
            if self._chunk_left < 0:
                raise HTTPError(400, "malformed chunked request body")
            if self._chunk_left == 0:
                while await _line(self.reader):  # trailers, up to the empty line
                    pass
                self._done = True
                return b""
        data = await self.reader.read(min(size, self._chunk_left))
        if not data:
            raise HTTPError(400, "request body ended early")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and await _line(self.reader):
            raise HTTPError(400, "malformed chunked request body")
        return data

    async def body(self, limit: int = MAX_JSON) -> bytes:
        if self._length > limit:
            self.must_close = True  # not read: the connection cannot be reused
            raise HTTPError(413, f"request body larger than {limit} bytes")
        parts, total = [], 0
        while True:
            data = await self.chunk()
            if not data:
                return b"".join(parts)
            total += len(data)
            if total > limit:
                self.must_close = True
                raise HTTPError(413, f"request body larger than {limit} bytes")
            parts.append(data)

    async def json(self, required: bool = True) -> object:
        """The body as JSON (at most 16 MiB). Empty: None, or 400 when ``required``."""
        raw = await self.body()
        if not raw.strip():
            if required:
                raise HTTPError(400, "a JSON request body is required")
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise HTTPError(400, f"invalid JSON: {exc}") from None

    async def closed(self) -> None:
        """Return when the client closes the connection (for endless streams: logs -f, events, stats).
        The connection is not reused afterwards: what this read belongs to no request."""
        self.must_close = True
        try:
            while await self.reader.read(4096):
                pass
        except (OSError, ConnectionError):
            pass

    async def discard(self, limit: int = 1 << 20) -> bool:
        """Skip what the handler left unread; False when too much is left (then the connection closes)."""
        total = 0
        while not self._done:
            data = await self.chunk()
            total += len(data)
            if total > limit:
                return False
        return True


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise HTTPError(431, "request line or header too long") from None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise HTTPError(400, "connection closed in the middle of a line") from None
        raise ConnectionResetError("peer closed") from None
    if len(line) > MAX_LINE:
        raise HTTPError(431, "request line or header too long")
    return line.rstrip(b"\r\n")


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    """The next request on a connection, None when the client closed it between requests."""
    try:
        line = await _line(reader)
        while not line:  # tolerate stray CRLFs between requests (RFC 9112 2.2)
            line = await _line(reader)
    except ConnectionResetError:
        return None
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise HTTPError(400, "malformed request line")
    try:
        method, target, version = (p.decode("ascii") for p in parts)
    except UnicodeDecodeError:
        raise HTTPError(400, "request line is not ASCII") from None
    headers: dict[str, str] = {}
    total = 0
    while True:
        raw = await _line(reader)
        if not raw:
            break
        total += len(raw)
        if total > MAX_HEADERS or len(headers) >= MAX_HEADER_COUNT:
            raise HTTPError(431, "too many or too large request headers")
        name, sep, value = raw.partition(b":")
        if not sep or not name or name != name.strip():
            raise HTTPError(400, "malformed header line")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers and key != "content-length" else text
    raw_path, _, raw_query = target.partition("?")
    if not raw_path.startswith("/"):
        raise HTTPError(400, "request target must be an absolute path")
    try:
        path = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    except UnicodeDecodeError:
        raise HTTPError(400, "request path is not valid UTF-8 once decoded") from None
    if "\x00" in path or "\x00" in raw_query:
        raise HTTPError(400, "NUL byte in the request target")
    try:
        query = parse_qs(raw_query, keep_blank_values=True, max_num_fields=200)
    except ValueError as exc:
        raise HTTPError(400, f"malformed query string: {exc}") from None
    return Request(method.upper(), path, query, headers, reader, writer, version)


def head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Response:
    """A whole response; handlers return one (or use ``Stream``/hijack and return None)."""

    def __init__(self, status: int = 200, body: bytes = b"", content_type: str = "application/json",
                 headers: list[tuple[str, str]] | None = None) -> None:  # fmt: skip
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or []


def json_response(data: object, status: int = 200) -> Response:
    return Response(status, json.dumps(data, separators=(",", ":")).encode() + b"\n")


class Stream:
    """A chunked response written as it is produced; ``close()`` sends the last chunk."""

    def __init__(self, writer: asyncio.StreamWriter, common: list[tuple[str, str]]) -> None:
        self.writer = writer
        self.common = common
        self.started = False

    async def start(self, status: int = 200, content_type: str = "application/json",
                    extra: list[tuple[str, str]] | None = None) -> None:  # fmt: skip
        headers = [
            *self.common,
            ("Content-Type", content_type),
            ("Transfer-Encoding", "chunked"),
            *(extra or []),
        ]
        self.writer.write(head(status, headers))
        self.started = True
        await self.writer.drain()

    async def send(self, data: bytes) -> None:
        if data:
            self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await self.writer.drain()

    async def send_json(self, data: object) -> None:
        await self.send(json.dumps(data, separators=(",", ":")).encode() + b"\n")

    async def close(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

"""``/v2/<name>/blobs/<digest>``: GET (whole or one byte range), HEAD, DELETE (unlinks from the repository;
the bytes go at the next ``gc``)."""

from __future__ import annotations

from kobako.errors import NotFound
from kobako.registry.server.asgi import FileResponse, Request, Response
from kobako.registry.server.errors import RegistryError
from kobako.registry.server.names import parse_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.registry.server.storage import Storage


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """(offset, length) for ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``; None when not satisfiable or
    malformed (one range only: multipart answers are not worth their complexity for blobs)."""
    unit, _, spec = value.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()):
        return None
    if last and not last.isdigit():
        return None
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return None
        n = min(n, size)
        return size - n, n
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, end - start + 1


def get_blob(storage: Storage, req: Request, name: str, ref: str) -> FileResponse:
    d = parse_digest(ref)
    try:
        f, size, path = storage.open_blob(name, d)
    except NotFound:
        raise RegistryError(
            "BLOB_UNKNOWN", f"blob {d} unknown to repository {name}", detail={"digest": str(d)}
        ) from None
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"docker-content-digest", str(d).encode()),
        (b"accept-ranges", b"bytes"),
        (b"etag", f'"{d}"'.encode()),
        (b"cache-control", b"max-age=31536000"),
    ]
    range_header = req.header("range")
    if range_header is None or req.method == "HEAD":
        return FileResponse(200, headers, f, path, 0, size)
    found = parse_range(range_header, size)
    if found is None:
        f.close()
        raise RegistryError(
            "RANGE_INVALID",
            f"range {range_header!r} cannot be satisfied for a blob of {size} bytes",
            headers=[(b"content-range", f"bytes */{size}".encode())],
        )
    offset, length = found
    headers.append((b"content-range", f"bytes {offset}-{offset + length - 1}/{size}".encode()))
    return FileResponse(206, headers, f, path, offset, length)


def delete_blob(storage: Storage, name: str, ref: str) -> Response:
    d = parse_digest(ref)
    try:
        storage.unlink_blob(name, d)
    except NotFound:
        raise RegistryError(
            "BLOB_UNKNOWN", f"blob {d} unknown to repository {name}", detail={"digest": str(d)}
        ) from None
    return Response(202, [(b"docker-content-digest", str(d).encode())])

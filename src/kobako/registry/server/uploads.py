"""``/v2/<name>/blobs/uploads/``: start (POST: a session, a monolithic upload with ``?digest=``, or a
cross-repository mount with ``?mount=&from=``), status (GET), chunks (PATCH, in order, Content-Range checked),
finish (PUT ``?digest=``, verified before anything is visible) and cancel (DELETE).

Each session's bytes go into a content-store ingest named ``upload-<id>``, hashed as they arrive. Open
writers are kept between requests (so a chunked upload is hashed once), at most :data:`MAX_OPEN` of them; a
closed one, or one left by a restarted server, resumes by rehashing what is on disk.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from kobako.errors import AlreadyExists, InvalidArgument, NotFound
from kobako.registry.server.asgi import ClientDisconnected, Request, Response
from kobako.registry.server.errors import RegistryError
from kobako.registry.server.names import check_name, check_upload_id, parse_digest
from kobako.registry.server.storage import UPLOAD_PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.content.ingest import LocalWriter
    from kobako.oci.digest import Digest
    from kobako.registry.server.storage import Storage

MAX_OPEN = 64
_WRITE_BATCH = 1 << 20


def parse_content_range(value: str) -> tuple[int, int]:
    """``start-end`` (inclusive, as the spec writes it; a ``bytes`` prefix and a ``/total`` are tolerated)."""
    text = value.strip()
    if text.lower().startswith("bytes"):
        text = text[5:].lstrip(" =")
    text = text.partition("/")[0]
    first, dash, last = text.partition("-")
    if not dash or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        raise RegistryError("RANGE_INVALID", f"invalid Content-Range {value[:100]!r}")
    return int(first), int(last)


class Uploads:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._writers: OrderedDict[str, LocalWriter] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    # -- writers kept open between requests ---------------------------------------------------------------

    def _writer(self, upload_id: str) -> LocalWriter:
        w = self._writers.get(upload_id)
        if w is not None:
            self._writers.move_to_end(upload_id)
            return w
        w = self.storage.content.writer(UPLOAD_PREFIX + upload_id)
        self._writers[upload_id] = w
        while len(self._writers) > MAX_OPEN:
            _, oldest = self._writers.popitem(last=False)
            oldest.close()  # keeps the data: the next request resumes it
        return w

    def _forget(self, upload_id: str) -> None:
        w = self._writers.pop(upload_id, None)
        if w is not None:
            w.close()
        self._locks.pop(upload_id, None)

    def close(self) -> None:
        for upload_id in list(self._writers):
            self._forget(upload_id)

    def _lock(self, upload_id: str) -> asyncio.Lock:
        return self._locks.setdefault(upload_id, asyncio.Lock())

    def _session(self, name: str, upload_id: str) -> str:
        check_upload_id(upload_id)
        try:
            session = self.storage.upload_session(upload_id)
        except (NotFound, InvalidArgument):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} unknown") from None
        if session.get("name") != name:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} does not belong to {name}")
        return upload_id

    @staticmethod
    def _progress_headers(name: str, upload_id: str, offset: int) -> list[tuple[bytes, bytes]]:
        return [
            (b"location", f"/v2/{name}/blobs/uploads/{upload_id}".encode()),
            (b"range", f"0-{max(offset - 1, 0)}".encode()),
            (b"docker-upload-uuid", upload_id.encode()),
        ]

    async def _receive_into(self, req: Request, w: LocalWriter) -> int:
        """Append the request body to ``w``; the number of bytes received."""
        received = 0
        batch = bytearray()
        try:
            async for chunk in req.chunks():
                received += len(chunk)
                batch += chunk
                if len(batch) >= _WRITE_BATCH:
                    w.write(batch)
                    batch.clear()
        finally:
            if batch:  # what did arrive stays: a client that lost its connection resumes from the offset
                w.write(batch)
        return received

    # -- endpoints --------------------------------------------------------------------------------------------

    async def start(self, req: Request, name: str) -> Response:
        mount, source = req.query.get("mount"), req.query.get("from")
        if mount and source:
            d = parse_digest(mount)
            check_name(source)
            if self.storage.repo_has_blob(source, d):
                self.storage.link_blob(name, d)
                return _created(name, d)
        digest = req.query.get("digest")
        if digest is None or mount:
            upload_id = self.storage.new_upload(name)
            return Response(202, self._progress_headers(name, upload_id, 0))
        d = parse_digest(digest)
        req.content_length()  # malformed: refused before a session exists
        return await self._finish(req, name, self.storage.new_upload(name), d)

    async def status(self, req: Request, name: str, upload_id: str) -> Response:
        self._session(name, upload_id)
        async with self._lock(upload_id):
            offset = self._writer(upload_id).offset
        return Response(204, self._progress_headers(name, upload_id, offset))

    async def patch(self, req: Request, name: str, upload_id: str) -> Response:
        self._session(name, upload_id)
        declared = req.content_length()
        async with self._lock(upload_id):
            w = self._writer(upload_id)
            self._check_range(req, name, upload_id, w.offset)
            try:
                received = await self._receive_into(req, w)
            except ClientDisconnected:
                return Response(400)  # nobody reads it; the partial chunk is kept for a resume
            if declared is not None and declared != received:
                raise RegistryError(
                    "SIZE_INVALID", f"received {received} bytes, Content-Length said {declared}"
                )
            return Response(202, self._progress_headers(name, upload_id, w.offset))

    def _check_range(self, req: Request, name: str, upload_id: str, offset: int) -> None:
        value = req.header("content-range")
        if value is None:
            return  # a streamed chunk: appended at the current offset
        start, end = parse_content_range(value)
        if start != offset:
            raise RegistryError(
                "RANGE_INVALID",
                f"chunk starts at {start}, the upload is at {offset}",
                headers=self._progress_headers(name, upload_id, offset),
            )
        declared = req.content_length()
        if declared is not None and declared != end - start + 1:
            raise RegistryError("SIZE_INVALID", f"Content-Range {value!r} but Content-Length {declared}")

    async def finish(self, req: Request, name: str, upload_id: str) -> Response:
        self._session(name, upload_id)
        d = parse_digest(req.query.get("digest"))
        return await self._finish(req, name, upload_id, d)

    async def _finish(self, req: Request, name: str, upload_id: str, d: Digest) -> Response:
        declared = req.content_length()  # SIZE_INVALID before anything is written
        async with self._lock(upload_id):
            w = self._writer(upload_id)
            self._check_range(req, name, upload_id, w.offset)
            try:
                received = await self._receive_into(req, w)
            except ClientDisconnected:
                return Response(400)
            if declared is not None and declared != received:
                self._forget(upload_id)
                self.storage.end_upload(upload_id)
                raise RegistryError(
                    "SIZE_INVALID", f"received {received} bytes, Content-Length said {declared}"
                )
            self._writers.pop(upload_id, None)
            try:
                # fsync + rename of a big blob: off the event loop
                await asyncio.to_thread(w.commit, None, d)
            except AlreadyExists:
                pass  # the same bytes were already here: the writer discarded its copy
            except InvalidArgument as exc:
                self.storage.end_upload(upload_id)  # the bytes can never match: the session is over
                self._locks.pop(upload_id, None)
                raise RegistryError("DIGEST_INVALID", str(exc), detail={"digest": str(d)}) from None
            finally:
                w.close()
        self.storage.end_upload(upload_id)
        self._locks.pop(upload_id, None)
        self.storage.link_blob(name, d)
        return _created(name, d)

    async def cancel(self, req: Request, name: str, upload_id: str) -> Response:
        self._session(name, upload_id)
        async with self._lock(upload_id):
            self._forget(upload_id)
            self.storage.end_upload(upload_id)
        return Response(204)


def _created(name: str, d: Digest) -> Response:
    return Response(
        201,
        [
            (b"location", f"/v2/{name}/blobs/{d}".encode()),
            (b"docker-content-digest", str(d).encode()),
        ],
    )

"""Image transfers: load (tar upload), save (tar download), pull and import (``/images/create``), push.

The work runs on a worker thread with the same calls the CLI makes (kobako.images.loader/saver/importer,
kobako.registry.client pull/push); its progress becomes Docker's JSON message stream. An error after the
stream started is reported in-stream as ``{"error": ..., "errorDetail": {"message": ...}}``, as dockerd does.
"""

from __future__ import annotations

import asyncio
import json

from kobako.api.bridge import BodyReader, ChunkWriter
from kobako.api.errors import message_of
from kobako.api.http import HTTPError, Request
from kobako.api.images import check_name, with_images
from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.api.app import Service
    from kobako.images.service import ImageService

_MAX_UPLOAD = 64 << 30  # an image archive or a build context above this is refused


def _json_line(item: object) -> bytes:
    return json.dumps(item, separators=(",", ":")).encode() + b"\r\n"


async def progress_stream(svc: Service, req: Request, work: Callable[[ChunkWriter], object]) -> object:
    """Run ``work(sink)`` on the pool while sending what it puts in ``sink`` as JSON lines."""
    loop = asyncio.get_running_loop()
    sink = ChunkWriter(loop)
    stream = svc.stream(req)
    await stream.start()

    def run() -> object:
        try:
            return work(sink)
        finally:
            sink.close_stream()

    job = loop.run_in_executor(svc.executor, run)
    try:
        await sink.pump(stream, _json_line)
    except (ConnectionError, OSError):
        job.cancel()
        raise
    try:
        result = await job
    except Exception as exc:
        text = message_of(exc)
        await stream.send(_json_line({"errorDetail": {"message": text}, "error": text}))
        result = None
    await stream.close()
    return result


class JSONProgress:
    """kobako.registry.client.progress's interface, as Docker's pull/push messages."""

    def __init__(self, sink: ChunkWriter, verb: str = "Downloading") -> None:
        self.sink = sink
        self.verb = verb
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.sent: dict[str, int] = {}

    @staticmethod
    def short(digest: str) -> str:
        return digest.partition(":")[2][:12] or digest[:12]

    def message(self, text: str) -> None:
        self.sink.put({"status": text})

    def start(self, digest: str, total: int, status: str) -> None:
        self.totals[digest], self.done[digest], self.sent[digest] = total, 0, 0
        self.sink.put({"status": status, "progressDetail": {}, "id": self.short(digest)})

    def advance(self, digest: str, n: int) -> None:
        self.done[digest] = self.done.get(digest, 0) + n
        if self.done[digest] - self.sent.get(digest, 0) >= 512 * 1024:  # a message per 512 KiB is plenty
            self.sent[digest] = self.done[digest]
            detail = {"current": self.done[digest], "total": self.totals.get(digest, 0)}
            self.sink.put({"status": self.verb, "progressDetail": detail, "id": self.short(digest)})

    def reset(self, digest: str, completed: int) -> None:
        self.done[digest] = completed

    def status(self, digest: str, text: str) -> None:
        self.sink.put({"status": text, "progressDetail": {}, "id": self.short(digest)})

    def close(self) -> None:
        pass

    def __enter__(self) -> JSONProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _reference(image: str, tag: str) -> str:
    check_name(image)
    if not tag:
        return image
    return f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}"


async def create(svc: Service, req: Request) -> None:
    """``docker pull`` (fromImage) and ``docker import`` (fromSrc=-, the rootfs tar as the body)."""
    from_image, from_src = req.arg("fromImage"), req.arg("fromSrc")
    if bool(from_image) == bool(from_src):
        raise HTTPError(400, "give exactly one of fromImage and fromSrc")
    tag, platform = req.arg("tag"), req.arg("platform") or None
    if from_src:
        if from_src != "-":
            raise HTTPError(
                400, "fromSrc must be '-' (the archive as the request body): URLs are not fetched"
            )
        repo = req.arg("repo")
        name = _reference(repo, tag) if repo else None
        changes, message = req.query.get("changes", []), req.arg("message")
        loop = asyncio.get_running_loop()

        def do_import(sink: ChunkWriter) -> None:
            from kobako.images.importer import import_rootfs

            body = BodyReader(req, loop, _MAX_UPLOAD)
            image_id = with_images(lambda s: import_rootfs(s, body, name, changes, message, "-"))
            sink.put({"status": image_id})
            svc.events.emit("image", "import", str(image_id), {"name": name or ""})

        await progress_stream(svc, req, do_import)
        return
    ref = _reference(
        from_image, tag or ("" if "@" in from_image or ":" in from_image.rpartition("/")[2] else "latest")
    )

    def do_pull(sink: ChunkWriter) -> None:
        from kobako.registry.client.pull import pull

        pulled = with_images(lambda s: pull(s, ref, platform=platform, progress=JSONProgress(sink)))
        svc.events.emit("image", "pull", str(pulled.name), {"name": str(pulled.name)})  # type: ignore[attr-defined]

    await progress_stream(svc, req, do_pull)


async def push(svc: Service, req: Request) -> None:
    ref = _reference(req.params["name"], req.arg("tag"))

    def do_push(sink: ChunkWriter) -> None:
        from kobako.registry.client.push import push as push_image

        pushed = with_images(lambda s: push_image(s, ref, None, progress=JSONProgress(sink, "Pushing")))
        tag = ref.rpartition(":")[2] if ":" in ref.rpartition("/")[2] else "latest"
        aux = {"Tag": tag, "Digest": pushed.digest, "Size": pushed.size}  # type: ignore[attr-defined]
        sink.put({"progressDetail": {}, "aux": aux})
        svc.events.emit("image", "push", ref, {"name": ref})

    await progress_stream(svc, req, do_push)


async def load(svc: Service, req: Request) -> None:
    loop = asyncio.get_running_loop()
    quiet = req.flag("quiet")

    def do_load(sink: ChunkWriter) -> None:
        from kobako.images.loader import load as load_archive
        from kobako.oci.reference import familiar

        body = BodyReader(req, loop, _MAX_UPLOAD)
        loaded = with_images(load_archive, body)
        for item in loaded:  # type: ignore[attr-defined]
            for name in item.names:
                svc.events.emit("image", "load", familiar(name), {"name": familiar(name)})
                if not quiet:
                    sink.put({"stream": f"Loaded image: {familiar(name)}\n"})
            if not item.names and not quiet:
                sink.put({"stream": f"Loaded image ID: {item.image_id}\n"})

    await progress_stream(svc, req, do_load)


def _save_items(svc: ImageService, refs: list[str]) -> list[tuple[object, list[str]]]:
    """Each image once, with the names asked for that it has (as `kobako save` groups them)."""
    from kobako.oci.reference import normalize

    items: list[tuple[object, list[str]]] = []
    for ref in refs:
        image = svc.resolve(check_name(ref))
        try:
            name = normalize(ref)
        except InvalidArgument:
            name = ""
        names = [name] if name in image.names else []
        for item in items:
            if item[0].id == image.id:  # type: ignore[attr-defined]
                item[1].extend(n for n in names if n not in item[1])
                break
        else:
            items.append((image, names))
    return items


async def save(svc: Service, req: Request) -> None:
    refs = [req.params["name"]] if "name" in req.params else req.query.get("names", [])
    if not refs:
        raise HTTPError(400, "no image names given (?names=)")
    loop = asyncio.get_running_loop()
    items = await svc.run(with_images, _save_items, refs)  # before the stream: a missing image is a clean 404
    sink = ChunkWriter(loop)
    stream = svc.stream(req)
    await stream.start(content_type="application/x-tar")

    def work() -> None:
        from kobako.images.saver import save as save_archive

        try:
            with_images(lambda s: save_archive(s, items, sink))  # type: ignore[arg-type]
        finally:
            sink.close_stream()

    job = loop.run_in_executor(svc.executor, work)
    await sink.pump(stream)
    await job  # a failure mid-archive cuts the stream short (the connection closes): the tar is incomplete
    await stream.close()


ROUTES = [
    ("POST", "/images/create", create),
    ("POST", "/images/load", load),
    ("GET", "/images/get", save),
    ("GET", "/images/{name*}/get", save),
    ("POST", "/images/{name*}/push", push),
]

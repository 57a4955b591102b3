"""The registry as a raw ASGI application, and :func:`serve` to run it under uvicorn.

Routing reads the path from its end, because a repository name may itself contain ``blobs`` or ``manifests``
components: ``/v2/<name>/blobs/uploads/<id>``, ``/v2/<name>/blobs/<digest>``, ``/v2/<name>/manifests/<ref>``,
``/v2/<name>/tags/list``, ``/v2/<name>/referrers/<digest>``; ``<name>`` is then checked against the spec's
grammar before anything touches the disk. Auth is decided per request before the handler runs.

uvicorn is the server: well kept, pure-Python fallback (h11), flow control on both directions (so streamed
bodies keep memory flat), TLS from a cert/key pair, graceful shutdown on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from kobako.errors import KobakoError
from kobako.registry.server import blobs, listing, manifests
from kobako.registry.server.asgi import Request, Response, error_response, json_response, send_response
from kobako.registry.server.auth import Authenticator
from kobako.registry.server.errors import RegistryError, translate
from kobako.registry.server.names import check_name
from kobako.registry.server.storage import Storage
from kobako.registry.server.uploads import Uploads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.registry.server.asgi import FileResponse, Receive, Scope, Send

log = logging.getLogger("kobako.registry")

#: route kind -> methods it answers
_METHODS = {
    "base": ("GET", "HEAD"),
    "catalog": ("GET",),
    "blob": ("GET", "HEAD", "DELETE"),
    "upload-start": ("POST",),
    "upload": ("GET", "PATCH", "PUT", "DELETE"),
    "manifest": ("GET", "HEAD", "PUT", "DELETE"),
    "tags": ("GET",),
    "referrers": ("GET",),
}
_DRAIN_LIMIT = 64 << 20  # an unread body up to this size is read and dropped so the client sees our error


def route(path: str) -> tuple[str, str, str] | None:
    """(kind, repository name, reference) for a request path, or None when it is not an API path."""
    if path in ("/v2", "/v2/"):
        return "base", "", ""
    if path == "/v2/_catalog":
        return "catalog", "", ""
    if not path.startswith("/v2/"):
        return None
    parts = path[4:].split("/")
    if len(parts) >= 4 and parts[-3] == "blobs" and parts[-2] == "uploads":
        kind = "upload" if parts[-1] else "upload-start"
        return kind, "/".join(parts[:-3]), parts[-1]
    if len(parts) >= 3 and parts[-2] == "blobs" and parts[-1] == "uploads":
        return "upload-start", "/".join(parts[:-2]), ""
    if len(parts) >= 3 and parts[-2:] == ["tags", "list"]:
        return "tags", "/".join(parts[:-2]), ""
    if len(parts) >= 3 and parts[-2] in ("blobs", "manifests", "referrers"):
        kind = {"blobs": "blob", "manifests": "manifest", "referrers": "referrers"}[parts[-2]]
        return kind, "/".join(parts[:-2]), parts[-1]
    return None


class RegistryApp:
    def __init__(self, root: str, *, htpasswd: str | None = None, anonymous_read: bool = False,
                 delete: bool = True) -> None:  # fmt: skip
        self.storage = Storage(root)
        self.auth = Authenticator(htpasswd, anonymous_read)
        self.uploads = Uploads(self.storage)
        self.delete = delete
        self.ready_message = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        req = Request(scope, receive)
        try:
            resp = await self._dispatch(req)
        except RegistryError as err:
            await self._drain(req)
            resp = error_response(err)
        except KobakoError as exc:
            await self._drain(req)
            resp = error_response(translate(exc, "UNKNOWN", "UNKNOWN"))
        except Exception:
            log.exception("%s %s failed", req.method, req.path)
            await self._drain(req)
            resp = error_response(RegistryError("UNKNOWN", "internal server error"))
        await send_response(scope, send, resp)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.ready_message:
                    sys.stderr.write(self.ready_message + "\n")
                    sys.stderr.flush()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.uploads.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _drain(req: Request) -> None:
        if req.body_done:
            return
        try:
            declared = req.content_length()
        except RegistryError:
            return
        if declared is not None and declared > _DRAIN_LIMIT:
            return  # too much to read for nothing: the connection closes instead
        seen = 0
        try:
            async for chunk in req.chunks():
                seen += len(chunk)
                if seen > _DRAIN_LIMIT:
                    return
        except Exception:
            return

    async def _authorize(self, req: Request) -> None:
        authorization = req.header("authorization")
        user = self.auth.quick(req.method, authorization)
        if user is None:
            user = await asyncio.to_thread(self.auth.check, req.method, authorization)
        req.user = user

    async def _dispatch(self, req: Request) -> Response | FileResponse:
        found = route(req.path)
        if found is None:
            return json_response(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
        kind, name, ref = found
        await self._authorize(req)
        if req.method not in _METHODS[kind]:
            raise RegistryError("UNSUPPORTED", f"{req.method} is not supported on {req.path}")
        if kind == "base":
            return json_response(200, {})
        if kind == "catalog":
            return listing.catalog(self.storage, req)
        check_name(name)
        if req.method == "DELETE" and not self.delete and kind in ("blob", "manifest"):
            raise RegistryError("UNSUPPORTED", "deletion is disabled on this registry")
        storage = self.storage
        if kind == "blob":
            if req.method == "DELETE":
                return blobs.delete_blob(storage, name, ref)
            return blobs.get_blob(storage, req, name, ref)
        if kind == "upload-start":
            return await self.uploads.start(req, name)
        if kind == "upload":
            handler = {"GET": self.uploads.status, "PATCH": self.uploads.patch, "PUT": self.uploads.finish,
                       "DELETE": self.uploads.cancel}[req.method]  # fmt: skip
            return await handler(req, name, ref)
        if kind == "manifest":
            if req.method == "PUT":
                return await manifests.put_manifest(storage, req, name, ref)
            if req.method == "DELETE":
                return manifests.delete_manifest(storage, name, ref)
            return manifests.get_manifest(storage, req, name, ref)
        if kind == "tags":
            return listing.tags_list(storage, req, name)
        return listing.referrers(storage, req, name, ref)


def parse_addr(addr: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (all interfaces)."""
    from kobako.errors import InvalidArgument

    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(f"invalid address {addr!r}: want HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def serve(addr: str, root: str, *, htpasswd: str | None = None, tls_cert: str | None = None,
          tls_key: str | None = None, anonymous_read: bool = False, delete: bool = True,
          log_level: str = "warning") -> None:  # fmt: skip
    """Run the registry until SIGINT/SIGTERM."""
    import uvicorn

    host, port = parse_addr(addr)
    app = RegistryApp(root, htpasswd=htpasswd, anonymous_read=anonymous_read, delete=delete)
    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if ":" in host else host
    app.ready_message = f"kobako registry serving {app.storage.root} on {scheme}://{shown}:{port}"
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_level=log_level, access_log=log_level == "debug",
        ssl_certfile=tls_cert, ssl_keyfile=tls_key, server_header=False, timeout_keep_alive=30,
    )  # fmt: skip
    if log_level != "debug":
        # every TLS probe of a plain-HTTP registry (Docker's rule for insecure hosts) would log a warning
        logging.getLogger("uvicorn.error").addFilter(_DropProbeNoise())
    uvicorn.Server(config).run()


class _DropProbeNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Invalid HTTP request received")

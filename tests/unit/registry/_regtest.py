"""Helpers for the registry unit tests: the server in-process (through its ASGI interface), image documents."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx
from _asgi import ASGIBridge

from kobako.registry.server.app import RegistryApp

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """The app on ``root`` and a ``call(method, path, ...)`` helper returning httpx responses."""

    def __init__(self, root: Path, **options: object) -> None:
        self.root = root
        self.options = options
        self.app = RegistryApp(str(root), **options)  # type: ignore[arg-type]
        self.bridge = ASGIBridge(self.app)

    def restart(self) -> None:
        """A new app on the same storage (what a server restart keeps)."""
        self.app.uploads.close()
        self.bridge.close()
        self.app = RegistryApp(str(self.root), **self.options)  # type: ignore[arg-type]
        self.bridge = ASGIBridge(self.app)

    def call(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
             raw_path: str | None = None) -> httpx.Response:  # fmt: skip
        """``raw_path``: the ASGI path exactly as given (no client-side ``..`` normalisation)."""
        extensions = {"asgi_path": raw_path} if raw_path else {}
        request = httpx.Request(method, "http://registry.test" + path, content=body, headers=headers or {},
                                extensions=extensions)  # fmt: skip
        return self.bridge(request)

    def upload(self, name: str, data: bytes) -> str:
        d = sha(data)
        r = self.call("POST", f"/v2/{name}/blobs/uploads/?digest={d}", data)
        assert r.status_code == 201, r.text
        return d

    def put_manifest(self, name: str, ref: str, doc: dict, media_type: str = OCI_MANIFEST) -> httpx.Response:
        body = json.dumps(doc).encode()
        return self.call("PUT", f"/v2/{name}/manifests/{ref}", body, {"content-type": media_type})

    def close(self) -> None:
        self.app.uploads.close()
        self.bridge.close()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_docs(files: dict[str, bytes], arch: str = "amd64", media_type: str = OCI_MANIFEST,
               config_type: str = OCI_CONFIG, layer_type: str = OCI_LAYER) -> tuple[dict, bytes, bytes]:  # fmt: skip
    """(manifest doc, config bytes, layer bytes) of a one-layer image."""
    layer = layer_tar(files)
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
    }).encode()  # fmt: skip
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": sha(layer), "size": len(layer)}],
    }
    return manifest, config, layer


def push_image(reg: Registry, name: str, tag: str, files: dict[str, bytes], **kw: str) -> tuple[str, dict]:
    """Push a one-layer image straight to the server; (manifest digest, manifest doc)."""
    manifest, config, layer = image_docs(files, **kw)
    reg.upload(name, config)
    reg.upload(name, layer)
    r = reg.put_manifest(name, tag, manifest, manifest["mediaType"])
    assert r.status_code == 201, r.text
    return r.headers["docker-content-digest"], manifest


def transports(handler: Callable[[httpx.Request], httpx.Response]) -> Callable[[object], object]:
    """A transport factory for pull/push that sends every request to ``handler``."""
    from kobako.registry.client.transport import HandlerTransport

    return lambda endpoint: HandlerTransport(handler)


def local_image(svc: object, name: str, size: int = 200_000) -> str:
    """Import a two-file rootfs as image ``name`` into the service ``svc``; its ID."""
    from kobako.images.importer import import_rootfs

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for fname, data in {"etc/hello": b"hello\n", "big": os.urandom(size)}.items():
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return import_rootfs(svc, buf, name, ['CMD ["sh"]'])

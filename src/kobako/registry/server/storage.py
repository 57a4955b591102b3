"""The registry's files under one root directory. Blobs are content-addressed in a :class:`LocalStore`
(ingest → verify size and digest → rename, so nothing is visible until whole); repositories only hold links::

    content/blobs/<alg>/<hex>                         every blob and manifest, once
    content/ingest/...                                uploads in progress (resumable across restarts)
    uploads/<id>.json                                 an upload session: {"name", "started"}
    repositories/<name>/_layers/<alg>/<hex>           a blob belongs to the repository (empty file)
    repositories/<name>/_manifests/revisions/<alg>/<hex>   a manifest of the repository: {"mediaType", "size"}
    repositories/<name>/_manifests/tags/<tag>         the digest a tag points at
    repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>.json   descriptor of a manifest whose subject is <hex>

Repository names are validated against the spec's grammar before they reach this module (components never
start with ``_``, so they cannot collide with the store's own directories). Every small file is written to a
temporary name and renamed into place; a crash leaves at worst an unreferenced blob for ``gc``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time

from kobako.content.local import LocalStore
from kobako.errors import InvalidArgument, NotFound, Unavailable
from kobako.oci.digest import Digest
from kobako.oci.jsoncodec import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO

UPLOAD_PREFIX = "upload-"


def _atomic_write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))


def _read_json(path: str, what: str) -> dict:
    with open(path, "rb") as f:
        doc = loads(f.read(1 << 20), what)
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what}: want an object")
    return doc


class Storage:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.content = LocalStore(os.path.join(self.root, "content"))
        self.repos_dir = os.path.join(self.root, "repositories")
        self.uploads_dir = os.path.join(self.root, "uploads")
        os.makedirs(self.repos_dir, exist_ok=True)
        os.makedirs(self.uploads_dir, exist_ok=True)

    # -- paths -----------------------------------------------------------------------------------------------

    def _repo(self, name: str) -> str:
        return os.path.join(self.repos_dir, name)

    def _layer_link(self, name: str, d: Digest) -> str:
        return os.path.join(self._repo(name), "_layers", d.algorithm, d.encoded)

    def _revision(self, name: str, d: Digest) -> str:
        return os.path.join(self._repo(name), "_manifests", "revisions", d.algorithm, d.encoded)

    def _tag_path(self, name: str, tag: str) -> str:
        return os.path.join(self._repo(name), "_manifests", "tags", tag)

    def _referrers_dir(self, name: str, subject: Digest) -> str:
        return os.path.join(self._repo(name), "_referrers", subject.algorithm, subject.encoded)

    # -- repositories ---------------------------------------------------------------------------------------

    def repo_exists(self, name: str) -> bool:
        base = self._repo(name)
        return os.path.isdir(os.path.join(base, "_manifests")) or os.path.isdir(os.path.join(base, "_layers"))

    def repositories(self) -> list[str]:
        """Every repository name, sorted."""
        found = []
        for dirpath, dirs, _files in os.walk(self.repos_dir):
            if "_manifests" in dirs or "_layers" in dirs:
                found.append(os.path.relpath(dirpath, self.repos_dir))
            dirs[:] = [d for d in dirs if not d.startswith("_")]
        return sorted(found)

    # -- blobs ----------------------------------------------------------------------------------------------

    def blob_exists(self, d: Digest) -> bool:
        return os.path.exists(self.content.blob_path(d))

    def repo_has_blob(self, name: str, d: Digest) -> bool:
        """Linked into the repository as a layer/config, or one of its manifests (fetchable as a blob too)."""
        if not self.blob_exists(d):
            return False
        return os.path.exists(self._layer_link(name, d)) or os.path.exists(self._revision(name, d))

    def open_blob(self, name: str, d: Digest) -> tuple[IO[bytes], int, str]:
        """(open file, size, path) of a blob of ``name``; NotFound otherwise."""
        if not (os.path.exists(self._layer_link(name, d)) or os.path.exists(self._revision(name, d))):
            raise NotFound(f"blob {d} is not in repository {name}")
        path = self.content.blob_path(d)
        f = self.content.reader(d)
        return f, os.fstat(f.fileno()).st_size, path

    def link_blob(self, name: str, d: Digest) -> None:
        _touch(self._layer_link(name, d))

    def unlink_blob(self, name: str, d: Digest) -> None:
        try:
            os.unlink(self._layer_link(name, d))
        except FileNotFoundError:
            raise NotFound(f"blob {d} is not in repository {name}") from None

    # -- manifests ------------------------------------------------------------------------------------------

    def put_manifest(self, name: str, body: bytes, media_type: str) -> Digest:
        from kobako.images.archive import put_bytes

        d = put_bytes(self.content, body, f"manifest-{secrets.token_hex(8)}")
        info = dumps({"mediaType": media_type, "size": len(body)}).encode()
        _atomic_write(self._revision(name, d), info)
        return d

    def manifest_info(self, name: str, d: Digest) -> dict:
        """{"mediaType", "size"} of a manifest of ``name``; NotFound otherwise."""
        try:
            info = _read_json(self._revision(name, d), f"manifest {d}")
        except FileNotFoundError:
            raise NotFound(f"manifest {d} is not in repository {name}") from None
        if not self.blob_exists(d):
            raise NotFound(f"manifest {d} is missing from the blob store")
        return info

    def has_manifest(self, name: str, d: Digest) -> bool:
        return os.path.exists(self._revision(name, d)) and self.blob_exists(d)

    def manifest_digests(self, name: str) -> Iterator[Digest]:
        base = os.path.join(self._repo(name), "_manifests", "revisions")
        for alg in sorted(_listdir(base)):
            for encoded in sorted(_listdir(os.path.join(base, alg))):
                with contextlib.suppress(InvalidArgument):
                    yield Digest(alg, encoded)

    def read_manifest(self, d: Digest, limit: int) -> bytes:
        return self.content.read_bytes(d, limit=limit)

    def delete_manifest(self, name: str, d: Digest) -> None:
        """Remove a manifest from ``name``, with the tags pointing at it and its entry as a referrer."""
        info = self.manifest_info(name, d)
        subject = self._subject_of(d, int(info.get("size", 0)))
        for tag in self.tags(name):
            if self.tag_target(name, tag) == d:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._tag_path(name, tag))
        if subject is not None:
            ref_path = os.path.join(self._referrers_dir(name, subject), f"{d.algorithm}-{d.encoded}.json")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(ref_path)
        os.unlink(self._revision(name, d))

    def _subject_of(self, d: Digest, size: int) -> Digest | None:
        try:
            doc = loads(self.content.read_bytes(d, limit=max(size, 1)), f"manifest {d}")
            subject = doc.get("subject") if isinstance(doc, dict) else None
            return Digest.parse(subject["digest"]) if isinstance(subject, dict) else None
        except (NotFound, InvalidArgument, KeyError, TypeError):
            return None

    # -- tags -----------------------------------------------------------------------------------------------

    def set_tag(self, name: str, tag: str, d: Digest) -> None:
        _atomic_write(self._tag_path(name, tag), str(d).encode())

    def tag_target(self, name: str, tag: str) -> Digest:
        try:
            with open(self._tag_path(name, tag), "rb") as f:
                return Digest.parse(f.read(200).decode("ascii", "replace").strip())
        except FileNotFoundError:
            raise NotFound(f"tag {tag} is not in repository {name}") from None

    def tags(self, name: str) -> list[str]:
        base = os.path.join(self._repo(name), "_manifests", "tags")
        return sorted(t for t in _listdir(base) if not t.endswith(".tmp"))

    def delete_tag(self, name: str, tag: str) -> None:
        try:
            os.unlink(self._tag_path(name, tag))
        except FileNotFoundError:
            raise NotFound(f"tag {tag} is not in repository {name}") from None

    # -- referrers ------------------------------------------------------------------------------------------

    def add_referrer(self, name: str, subject: Digest, desc: dict) -> None:
        d = Digest.parse(desc["digest"])
        path = os.path.join(self._referrers_dir(name, subject), f"{d.algorithm}-{d.encoded}.json")
        _atomic_write(path, dumps(desc).encode())

    def referrers(self, name: str, subject: Digest) -> list[dict]:
        base = self._referrers_dir(name, subject)
        out = []
        for entry in sorted(_listdir(base)):
            if not entry.endswith(".json"):
                continue
            with contextlib.suppress(OSError, InvalidArgument, ValueError):
                desc = _read_json(os.path.join(base, entry), "referrer")
                if self.has_manifest(name, Digest.parse(desc["digest"])):
                    out.append(desc)
        return out

    # -- upload sessions ------------------------------------------------------------------------------------

    def new_upload(self, name: str) -> str:
        upload_id = secrets.token_hex(16)
        doc = {"name": name, "started": time.time()}
        _atomic_write(os.path.join(self.uploads_dir, upload_id + ".json"), dumps(doc).encode())
        return upload_id

    def upload_session(self, upload_id: str) -> dict:
        try:
            return _read_json(os.path.join(self.uploads_dir, upload_id + ".json"), f"upload {upload_id}")
        except FileNotFoundError:
            raise NotFound(f"upload {upload_id} not found") from None

    def end_upload(self, upload_id: str) -> None:
        """Forget a session and drop its partial data (the caller holds no writer on it)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.uploads_dir, upload_id + ".json"))
        with contextlib.suppress(NotFound, Unavailable):  # Unavailable: a live writer still holds it
            self.content.abort(UPLOAD_PREFIX + upload_id)

    def upload_ids(self) -> list[str]:
        return sorted(n[:-5] for n in _listdir(self.uploads_dir) if n.endswith(".json"))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []

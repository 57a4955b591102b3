"""The image service the engine and the CLI use: resolve references, prepare container root filesystems.

This module is on the ``kobako run`` path, so it imports little: the metadata database (sqlite3), the
reference parser and the document validators (no ``re``/``json``/``typing``). Blobs are read straight from
``content/blobs/<alg>/<hex>`` (the content store's documented layout); the content store, the snapshotters
and the unpacker are imported only when a call needs them.
"""

from __future__ import annotations

import os

from kobako import paths
from kobako.errors import InvalidArgument, NotFound
from kobako.metadata.db import ImageRecord, MetadataDB
from kobako.oci import image_spec as spec
from kobako.oci.reference import parse_normalized

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from kobako.content.local import LocalStore
    from kobako.images.store import ImageStore
    from kobako.metadata.db import Tx
    from kobako.metadata.gc import GCResult
    from kobako.mount import Mount
    from kobako.snapshots.base import Snapshotter

_HEX = frozenset("0123456789abcdef")
CONTAINER_LABEL = "kobako.container"


class Image:
    """One image: ``id`` (config digest), ``names``, ``config`` (the whole config JSON), ``top_snapshot`` (chain
    ID of the top layer, "" for none), ``size`` (bytes of its layers), plus what the CLI shows: ``target`` (the
    record's descriptor), ``manifest``, ``manifest_digest``, ``chain`` (every layer's chain ID), ``created``
    (record time)."""

    __slots__ = ("chain", "config", "created", "id", "manifest", "manifest_digest", "names", "size",
                 "target", "top_snapshot")  # fmt: skip

    def __init__(self, id: str, names: list[str], config: dict, manifest: dict, manifest_digest: str,
                 target: dict, created: float) -> None:  # fmt: skip
        self.id = id
        self.names = names
        self.config = config
        self.manifest = manifest
        self.manifest_digest = manifest_digest
        self.target = target
        self.created = created
        self.chain = spec.chain_ids(config["rootfs"]["diff_ids"])
        self.top_snapshot = self.chain[-1] if self.chain else ""
        self.size = sum(layer["size"] for layer in manifest["layers"])

    @property
    def layers(self) -> list[dict]:
        return self.manifest["layers"]

    @property
    def diff_ids(self) -> list[str]:
        return self.config["rootfs"]["diff_ids"]

    def __repr__(self) -> str:
        return f"Image({self.id[:19]}, names={self.names})"


class ImageService:
    def __init__(self, root: str | None = None) -> None:
        self.root = os.path.abspath(root or paths.state_root())
        self.content_root = os.path.join(self.root, "content")
        self._db: MetadataDB | None = None
        self._store: ImageStore | None = None
        self._content: LocalStore | None = None
        self._sn: Snapshotter | None = None

    # -- parts, opened on first use -----------------------------------------------------------------------

    @property
    def db(self) -> MetadataDB:
        if self._db is None:
            os.makedirs(self.root, exist_ok=True)
            self._db = MetadataDB(os.path.join(self.root, "metadata.db"))
        return self._db

    @property
    def store(self) -> ImageStore:
        if self._store is None:
            from kobako.images.store import ImageStore

            self._store = ImageStore(self.db)
        return self._store

    @property
    def content(self) -> LocalStore:
        if self._content is None:
            from kobako.content.local import LocalStore

            self._content = LocalStore(self.content_root)
        return self._content

    def snapshotter(self) -> Snapshotter:
        if self._sn is None:
            from kobako.images.snapshotters import open_snapshotter

            self._sn = open_snapshotter(self.root)
        return self._sn

    def checkpoint(self) -> None:
        """Move what was committed to the snapshot database into its file now, opening it if needed and
        keeping it open (see :meth:`kobako.snapshots.storage.MetaStore.checkpoint`): for a caller with time
        to spare, which then has the database open for what comes next."""
        checkpoint = getattr(self.snapshotter(), "checkpoint", None)
        if checkpoint is not None:
            checkpoint()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._sn is not None:
            self._sn.close()

    # -- blobs ---------------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        algorithm, _, encoded = spec.digest_of(digest, "digest").partition(":")
        return os.path.join(self.content_root, "blobs", algorithm, encoded)

    def read_blob(self, digest: str, limit: int = spec.MAX_DOCUMENT_SIZE) -> bytes:
        try:
            with open(self.blob_path(digest), "rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise NotFound(f"content {digest} is missing from the content store") from None
        if len(data) > limit:
            raise InvalidArgument(f"content {digest} is larger than {limit} bytes")
        return data

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    # -- images ----------------------------------------------------------------------------------------------

    def image_from_records(self, recs: list[ImageRecord]) -> Image:
        """Build an :class:`Image` from the records of one image ID (reads its manifest and config)."""
        rec = recs[0]
        target = {"mediaType": rec.media_type, "digest": rec.digest, "size": rec.size}
        manifest_desc = target
        if rec.media_type in spec.INDEX_TYPES:
            index = spec.parse(self.read_blob(rec.digest), "index", f"index {rec.digest}")
            found = spec.select_manifest(index)
            if found is None:
                raise NotFound(f"image {rec.name}: no manifest for {spec.host_platform()['architecture']}")
            manifest_desc = found
        manifest = spec.parse(self.read_blob(manifest_desc["digest"]), "manifest", f"manifest {rec.digest}")
        config_digest = manifest["config"]["digest"]
        config = spec.parse(self.read_blob(config_digest), "config", f"config {config_digest}")
        names = [r.name for r in recs if r.name != r.image_id]
        return Image(rec.image_id, names, config, manifest, manifest_desc["digest"], target,
                     min(r.created for r in recs))  # fmt: skip

    def resolve(self, ref: str) -> Image:
        """An image by name[:tag][@digest] (short names normalised), full ID, or unambiguous short ID."""
        with self.db.transaction() as tx:
            recs = self._lookup(tx, ref)
        if not recs:
            raise NotFound(f"no such image: {ref}")
        return self.image_from_records(recs)

    def _lookup(self, tx: Tx, ref: str) -> list[ImageRecord]:
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("empty image reference")
        hexpart = ref[7:] if ref.startswith("sha256:") else ref
        is_hex = 0 < len(hexpart) <= 64 and _HEX.issuperset(hexpart)
        if is_hex and (len(hexpart) == 64 or ref.startswith("sha256:")):
            return self._by_prefix(tx, hexpart, ref)
        try:
            r = parse_normalized(ref)
        except InvalidArgument:
            if is_hex:
                return self._by_prefix(tx, hexpart, ref)
            raise
        if r.digest:
            repo = r.name
            recs = [
                x for x in tx.by_digest(r.digest) if x.name.rpartition(":")[0] == repo or x.name == str(r)
            ]
            if r.tag:
                recs = [x for x in recs if x.name == f"{repo}:{r.tag}"]
            return tx.by_id(recs[0].image_id) if recs else []
        rec = tx.get(str(r))
        if rec is not None:
            return tx.by_id(rec.image_id)
        if is_hex:
            return self._by_prefix(tx, hexpart, ref)
        return []

    @staticmethod
    def _by_prefix(tx: Tx, hexpart: str, ref: str) -> list[ImageRecord]:
        ids = tx.ids_with_prefix("sha256:" + hexpart)
        if len(ids) > 1:
            raise InvalidArgument(f"short image ID {ref!r} is ambiguous: it matches {len(ids)} images")
        return tx.by_id(ids[0]) if ids else []

    def list_images(self) -> list[Image]:
        """Every image once (grouped by ID), newest first; images whose content is broken are skipped."""
        groups: dict[str, list[ImageRecord]] = {}
        for rec in self.store.list():
            groups.setdefault(rec.image_id, []).append(rec)
        out = []
        for recs in groups.values():
            try:
                out.append(self.image_from_records(recs))
            except (NotFound, InvalidArgument):
                continue
        out.sort(key=lambda i: i.created, reverse=True)
        return out

    # -- root filesystems -------------------------------------------------------------------------------------

    def ensure_unpacked(self, image: Image) -> None:
        """Unpack the image's layers into snapshots if any is missing."""
        if not image.top_snapshot:
            return
        sn = self.snapshotter()
        try:
            sn.stat(image.top_snapshot)  # a committed snapshot's ancestors all exist
            return
        except NotFound:
            pass
        from kobako.images.unpack import unpack
        from kobako.metadata.lock import GCLock

        with GCLock(self.root):
            unpack(sn, self.content_root, image.layers, image.diff_ids)

    def prepare_rootfs(self, image: Image, key: str, labels: dict[str, str]) -> list[Mount]:
        """A new active snapshot ``key`` on top of the image (unpacked first if needed); its mounts."""
        sn = self.snapshotter()
        try:  # the image is usually unpacked already: no separate look first
            return sn.prepare(key, image.top_snapshot, labels)
        except NotFound:  # its top layer is missing (never unpacked, or a GC removed it): unpack, again
            self.ensure_unpacked(image)
            return sn.prepare(key, image.top_snapshot, labels)

    def rootfs_mounts(self, key: str) -> list[Mount]:
        return self.snapshotter().mounts(key)

    def remove_rootfs(self, key: str) -> None:
        try:
            self.snapshotter().remove(key)
        except NotFound:
            pass

    def image_in_use(self, image: Image) -> list[str]:
        """IDs of the containers whose record (``containers/<id>/config.json``) names this image."""
        from kobako.oci import jsoncodec

        base = os.path.join(self.root, "containers")
        try:
            ids = sorted(os.listdir(base))
        except FileNotFoundError:
            return []
        users = []
        for cid in ids:
            try:
                with open(os.path.join(base, cid, "config.json"), "rb") as f:
                    record = jsoncodec.loads(f.read(), f"container {cid} record")
            except (OSError, InvalidArgument):
                continue
            if isinstance(record, dict) and record.get("image_id") == image.id:
                users.append(cid)
        return users

    # -- garbage ----------------------------------------------------------------------------------------------

    def gc(self) -> GCResult:
        """Remove blobs and committed snapshots no image, lease or active snapshot needs."""
        from kobako.metadata.gc import collect
        from kobako.metadata.lock import GCLock

        with GCLock(self.root, exclusive=True):
            return collect(self.content, self.snapshotter(), self.db)

"""The ImageStore: names → target descriptors over the metadata database, with Docker's dangling images.

An image is identified by its config digest (the image ID). Each name (a normalised reference) is one
record. When a name moves to another image, or is removed with ``rmi -f`` while a container still uses the
image, the image it left keeps a record named by its own ID: Docker's ``<none>:<none>``, removed by
``image prune``.
"""

from __future__ import annotations

from kobako.errors import NotFound
from kobako.metadata.db import ImageRecord, MetadataDB

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Mapping


def target_of(rec: ImageRecord) -> dict:
    return {"mediaType": rec.media_type, "digest": rec.digest, "size": rec.size}


def is_dangling(rec: ImageRecord) -> bool:
    return rec.name == rec.image_id


class ImageStore:
    def __init__(self, db: MetadataDB) -> None:
        self.db = db

    def get(self, name: str) -> ImageRecord | None:
        with self.db.transaction() as tx:
            return tx.get(name)

    def list(self) -> list[ImageRecord]:
        with self.db.transaction() as tx:
            return tx.list()

    def by_id(self, image_id: str) -> list[ImageRecord]:
        with self.db.transaction() as tx:
            return tx.by_id(image_id)

    def set(
        self,
        name: str,
        target: Mapping[str, object],
        image_id: str,
        labels: Mapping[str, str] | None = None,
        created: float | None = None,
    ) -> ImageRecord | None:
        """Point ``name`` at an image; the image it pointed at before becomes dangling if nothing else names
        it. Returns the replaced record."""
        with self.db.transaction(write=True) as tx:
            if tx.get(image_id) is not None and name != image_id:
                tx.delete(image_id)  # a dangling image that now has a name
            old = tx.put(name, target, image_id, labels, created)
            if old is not None and old.image_id != image_id and not tx.by_id(old.image_id):
                tx.put(old.image_id, target_of(old), old.image_id, old.labels, old.created)
            return old

    def add_dangling(self, target: Mapping[str, object], image_id: str, created: float | None = None) -> bool:
        """Record an image that has no name (``kobako import`` without one); False if it has records."""
        with self.db.transaction(write=True) as tx:
            if tx.by_id(image_id):
                return False
            tx.put(image_id, target, image_id, None, created)
            return True

    def untag(self, name: str, *, keep_dangling: bool = False) -> ImageRecord:
        """Remove one name. With ``keep_dangling`` the image keeps a dangling record if this was its last."""
        with self.db.transaction(write=True) as tx:
            rec = tx.get(name)
            if rec is None:
                raise NotFound(f"no such image: {name}")
            tx.delete(name)
            if keep_dangling and rec.name != rec.image_id and not tx.by_id(rec.image_id):
                tx.put(rec.image_id, target_of(rec), rec.image_id, rec.labels, rec.created)
            return rec

    def remove_image(self, image_id: str) -> list[ImageRecord]:
        """Remove every record of an image; return them."""
        with self.db.transaction(write=True) as tx:
            recs = tx.by_id(image_id)
            for rec in recs:
                tx.delete(rec.name)
            return recs

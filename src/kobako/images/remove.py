"""Removing images: ``rmi`` semantics (untag, refuse while a container uses the image, delete) and prune."""

from __future__ import annotations

from kobako.errors import Conflict, InvalidArgument

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from kobako.images.service import ImageService


def _short(image_id: str) -> str:
    return image_id.partition(":")[2][:12]


def remove(svc: ImageService, ref: str, force: bool) -> tuple[list[str], bool]:
    """Remove one image or name (docker rmi); return the lines to print and whether an image was deleted.

    A name of an image with other names is only untagged; an image in use by a container is refused unless
    ``force``, and then only untagged (kept as a dangling image); otherwise every name and the image go.
    """
    from kobako.oci.reference import familiar, normalize

    image = svc.resolve(ref)
    name = None
    try:
        candidate = normalize(ref)
        if candidate in image.names:
            name = candidate
    except InvalidArgument:
        pass
    if name is not None and len(image.names) > 1:
        svc.store.untag(name)
        return [f"Untagged: {familiar(name)}"], False
    if name is None and len(image.names) > 1 and not force:
        raise Conflict(f"unable to delete {_short(image.id)} (must be forced) - image is referenced in "
                       "multiple repositories")  # fmt: skip
    users = svc.image_in_use(image)
    if users and not force:
        if name is not None:
            raise Conflict(f'unable to remove repository reference "{ref}" (must force) - container '
                           f"{users[0][:12]} is using its referenced image {_short(image.id)}")  # fmt: skip
        raise Conflict(f"unable to delete {_short(image.id)} (must be forced) - image is being used by "
                       f"container {users[0][:12]}")  # fmt: skip
    lines = [f"Untagged: {familiar(n)}" for n in image.names]
    if users:  # forced, but a container still needs it: keep it as a dangling image, like docker
        for n in image.names:
            svc.store.untag(n, keep_dangling=True)
        return lines, False
    svc.store.remove_image(image.id)
    return [*lines, f"Deleted: {image.id}"], True


def prune_images(svc: ImageService, all_images: bool) -> tuple[list[str], int]:
    """Remove dangling (or, with ``all_images``, all unused) images, then GC; (lines, bytes reclaimed)."""
    from kobako.images.store import is_dangling

    lines = []
    for image in svc.list_images():
        recs = svc.store.by_id(image.id)
        if not all_images and not all(is_dangling(r) for r in recs):
            continue
        if svc.image_in_use(image):
            continue
        svc.store.remove_image(image.id)
        lines += [f"untagged: {n}" for n in _familiar(image.names)] + [f"deleted: {image.id}"]
    return lines, svc.gc().bytes


def _familiar(names: list[str]) -> list[str]:
    from kobako.oci.reference import familiar

    return [familiar(n) for n in names]

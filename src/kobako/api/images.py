"""Image endpoints: list, inspect, history, tag, remove, prune (transfers are in images_transfer.py).

Each request opens its own ImageService on the worker thread (SQLite handles stay on the thread that opened
them) and calls what the CLI calls: kobako.images.inspect, remove, store.
"""

from __future__ import annotations

from kobako.api.filters import label_match, parse_filters
from kobako.api.http import HTTPError, Request, Response, json_response
from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.api.app import Service
    from kobako.images.service import Image, ImageService

_LIST_FILTERS = ("reference", "dangling", "label", "before", "since", "until")


def with_images(fn: Callable[..., object], *args: object) -> object:
    """``fn(image_service, *args)`` with a service opened and closed on this (worker) thread."""
    from kobako.images.service import ImageService

    svc = ImageService()
    try:
        return fn(svc, *args)
    finally:
        svc.close()


def check_name(name: str) -> str:
    if not name or ".." in name.split("/") or "\x00" in name or name.startswith(("/", "-")):
        raise InvalidArgument(f"invalid reference format: {name!r}")
    return name


def _row(image: Image) -> dict:
    from kobako.images import inspect

    cfg = image.config.get("config") or {}
    return {
        "Id": image.id, "ParentId": "", "RepoTags": inspect.repo_tags(image),
        "RepoDigests": inspect.repo_digests(image), "Created": int(inspect.created(image)), "Size": image.size,
        "SharedSize": -1, "VirtualSize": image.size, "Labels": cfg.get("Labels") or {}, "Containers": -1,
    }  # fmt: skip


def _list(svc: ImageService, filters: dict[str, list[str]]) -> list[dict]:
    from kobako.oci.reference import parse_normalized

    rows = []
    for image in svc.list_images():
        row = _row(image)
        if "dangling" in filters and (filters["dangling"][-1].lower() in ("true", "1")) == bool(image.names):
            continue
        if "label" in filters and not label_match(row["Labels"], filters["label"]):
            continue
        if "reference" in filters:
            names = [parse_normalized(n) for n in image.names]
            wanted = filters["reference"]
            if not any(w in (r.familiar(), r.familiar_name(), str(r), r.name) for r in names for w in wanted):
                continue
        rows.append(row)
    return rows


async def list_images(svc: Service, req: Request) -> Response:
    filters = parse_filters(req.arg("filters"), _LIST_FILTERS)
    if req.arg("filter"):  # the pre-1.25 spelling of a reference filter
        filters.setdefault("reference", []).append(req.arg("filter"))
    return json_response(await svc.run(with_images, _list, filters))


def _inspect(svc: ImageService, ref: str) -> dict:
    from kobako.images.inspect import inspect
    from kobako.images.unpack import snapshotter_kind

    data = inspect(svc.resolve(ref), snapshotter_kind(svc.root))
    data.setdefault("VirtualSize", data.get("Size", 0))
    data.setdefault("ContainerConfig", {})
    return data


async def inspect_image(svc: Service, req: Request) -> Response:
    return json_response(await svc.run(with_images, _inspect, check_name(req.params["name"])))


def _history(svc: ImageService, ref: str) -> list[dict]:
    from kobako.images.inspect import history, repo_tags

    image = svc.resolve(ref)
    rows = history(image)
    return [{"Id": r["id"], "Created": int(r["created"] or 0), "CreatedBy": r["created_by"],
             "Tags": repo_tags(image) if i == 0 else None, "Size": r["size"], "Comment": r["comment"]}
            for i, r in enumerate(rows)]  # fmt: skip


async def history(svc: Service, req: Request) -> Response:
    return json_response(await svc.run(with_images, _history, check_name(req.params["name"])))


def tag_image(svc: ImageService, source: str, target: str) -> str:
    """Name ``target`` the image ``source`` resolves to; the normalised name."""
    from kobako.images.store import target_of
    from kobako.oci.reference import normalize

    image = svc.resolve(source)
    name = normalize(target)
    if "@" in name:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
    recs = svc.store.by_id(image.id)
    svc.store.set(name, target_of(recs[0]), image.id)
    return name


async def tag(svc: Service, req: Request) -> Response:
    source = check_name(req.params["name"])
    repo, tag_ = req.arg("repo"), req.arg("tag")
    if not repo:
        raise HTTPError(400, "repository name (?repo=) must have at least one component")
    target = check_name(f"{repo}:{tag_}" if tag_ else repo)
    name = await svc.run(with_images, tag_image, source, target)
    svc.events.emit("image", "tag", str(name), {"name": str(name)})
    return Response(201, b"", "text/plain")


def _remove(svc: ImageService, ref: str, force: bool) -> list[dict]:
    from kobako.images.remove import remove

    lines, deleted = remove(svc, ref, force)
    if deleted:
        svc.gc()
    out = []
    for line in lines:
        key, _, value = line.partition(": ")
        out.append({key: value})
    return out


async def remove_image(svc: Service, req: Request) -> Response:
    ref = check_name(req.params["name"])
    items: list[dict] = await svc.run(with_images, _remove, ref, req.flag("force"))  # type: ignore[assignment]
    for item in items:
        for action, actor in item.items():
            svc.events.emit("image", "untag" if action == "Untagged" else "delete", actor, {"name": actor})
    return json_response(items)


def _prune(svc: ImageService, all_images: bool) -> dict:
    from kobako.images.remove import prune_images

    lines, freed = prune_images(svc, all_images)
    items = []
    for line in lines:
        key, _, value = line.partition(": ")
        items.append({"Untagged" if key == "untagged" else "Deleted": value})
    return {"ImagesDeleted": items or None, "SpaceReclaimed": freed}


async def prune(svc: Service, req: Request) -> Response:
    filters = parse_filters(req.arg("filters"), ("dangling", "until", "label"))
    all_images = bool(filters.get("dangling")) and filters["dangling"][-1].lower() in ("false", "0")
    return json_response(await svc.run(with_images, _prune, all_images))


ROUTES = [
    ("GET", "/images/json", list_images),
    ("POST", "/images/prune", prune),
    ("GET", "/images/{name*}/json", inspect_image),
    ("GET", "/images/{name*}/history", history),
    ("POST", "/images/{name*}/tag", tag),
    ("DELETE", "/images/{name*}", remove_image),
]

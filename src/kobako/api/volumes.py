"""Volume endpoints over kobako.engine.volumes.VolumeStore (the store `kobako volume` uses)."""

from __future__ import annotations

from kobako.api.createopts import _get, _str_map
from kobako.api.filters import label_match, parse_filters
from kobako.api.http import Request, Response, json_response
from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.api.app import Service


def _store() -> object:
    from kobako.engine.volumes import VolumeStore

    return VolumeStore()


def _list(filters: dict[str, list[str]]) -> dict:
    store = _store()
    usage = store.usage()  # type: ignore[attr-defined]
    out = []
    for v in store.list():  # type: ignore[attr-defined]
        if "name" in filters and not any(n in v.name for n in filters["name"]):
            continue
        if "label" in filters and not label_match(v.labels, filters["label"]):
            continue
        if "dangling" in filters and (filters["dangling"][-1].lower() in ("true", "1")) == bool(
            usage.get(v.name)
        ):
            continue
        out.append(v.inspect())
    return {"Volumes": out, "Warnings": []}


async def list_volumes(svc: Service, req: Request) -> Response:
    filters = parse_filters(req.arg("filters"), ("name", "label", "dangling", "driver"))
    return json_response(await svc.run(_list, filters))


async def create(svc: Service, req: Request) -> Response:
    body = await req.json(required=False) or {}
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: the volume config must be an object")
    name = _get(body, "Name", (str,), "") or None
    driver = _get(body, "Driver", (str,), "") or "local"
    labels, opts = _str_map(body, "Labels"), _str_map(body, "DriverOpts")
    vol = await svc.run(lambda: _store().create(name, labels=labels, driver=driver, opts=opts))  # type: ignore[attr-defined]
    svc.events.emit("volume", "create", vol.name, {"driver": vol.driver})  # type: ignore[attr-defined]
    return json_response(vol.inspect(), 201)  # type: ignore[attr-defined]


async def inspect(svc: Service, req: Request) -> Response:
    name = req.params["name"]
    return json_response(await svc.run(lambda: _store().inspect(name)))  # type: ignore[attr-defined]


async def remove(svc: Service, req: Request) -> Response:
    name, force = req.params["name"], req.flag("force")
    await svc.run(lambda: _store().remove(name, force=force))  # type: ignore[attr-defined]
    svc.events.emit("volume", "destroy", name, {"driver": "local"})
    return Response(204)


async def prune(svc: Service, req: Request) -> Response:
    parse_filters(req.arg("filters"), ("label", "all"))
    removed = await svc.run(lambda: _store().prune())  # type: ignore[attr-defined]
    for name in removed:  # type: ignore[attr-defined]
        svc.events.emit("volume", "destroy", name, {"driver": "local"})
    return json_response({"VolumesDeleted": removed, "SpaceReclaimed": 0})


ROUTES = [
    ("GET", "/volumes", list_volumes),
    ("POST", "/volumes/create", create),
    ("POST", "/volumes/prune", prune),
    ("GET", "/volumes/{name}", inspect),
    ("DELETE", "/volumes/{name}", remove),
]

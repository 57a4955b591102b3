"""Network endpoints over kobako.engine.network.service.NetworkService (as `kobako network` uses it).

The service is opened per request on the worker thread (its SQLite handle stays on that thread). ``host``
and ``none`` are listed as dockerd lists them; they are modes, not records.
"""

from __future__ import annotations

from kobako.api.createopts import _flag, _get, _str_map
from kobako.api.filters import label_match, parse_filters
from kobako.api.http import Request, Response, json_response
from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.api.app import Service
    from kobako.engine.network.service import NetworkService

_MODES = ("host", "none")


def _with(fn: Callable[[NetworkService], object]) -> object:
    from kobako.engine.network.service import NetworkService

    svc = NetworkService()
    try:
        return fn(svc)
    finally:
        svc.close()


def _mode(name: str) -> dict:
    return {"Name": name, "Id": name, "Created": "0001-01-01T00:00:00Z", "Scope": "local", "Driver": name,
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None, "Config": []}, "Internal": False,
            "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
            "Containers": {}, "Options": {}, "Labels": {}}  # fmt: skip


def _list(net: NetworkService, filters: dict[str, list[str]]) -> list[dict]:
    net.ensure_default()
    rows = [net.inspect(n.id) for n in net.list()] + [_mode(m) for m in _MODES]
    out = []
    for row in rows:
        if "name" in filters and not any(w in row["Name"] for w in filters["name"]):
            continue
        if "id" in filters and not any(row["Id"].startswith(w) for w in filters["id"]):
            continue
        if "driver" in filters and row["Driver"] not in filters["driver"]:
            continue
        if "label" in filters and not label_match(row["Labels"], filters["label"]):
            continue
        out.append(row)
    return out


async def list_networks(svc: Service, req: Request) -> Response:
    filters = parse_filters(
        req.arg("filters"), ("name", "id", "driver", "label", "type", "scope", "dangling")
    )
    return json_response(await svc.run(_with, lambda n: _list(n, filters)))


async def inspect(svc: Service, req: Request) -> Response:
    ref = req.params["id"]
    if ref in _MODES:
        return json_response(_mode(ref))
    return json_response(await svc.run(_with, lambda n: n.inspect(ref)))


async def create(svc: Service, req: Request) -> Response:
    body = await req.json()
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: the network config must be an object")
    name = _get(body, "Name", (str,), "")
    if not name:
        raise InvalidArgument("network name is required")
    driver = _get(body, "Driver", (str,), "") or "bridge"
    if driver != "bridge":
        raise InvalidArgument(f'network driver {driver!r} is not supported (only "bridge")')
    ipam = _get(body, "IPAM", (dict,), "") or {}
    configs = _get(ipam, "Config", (list,), "IPAM.") or []  # type: ignore[arg-type]
    subnet = gateway = None
    if configs:
        if len(configs) > 1 or not isinstance(configs[0], dict):  # type: ignore[index]
            raise InvalidArgument("only one IPAM config (an IPv4 subnet) is supported")
        subnet = _get(configs[0], "Subnet", (str,), "IPAM.Config.")  # type: ignore[index]
        gateway = _get(configs[0], "Gateway", (str,), "IPAM.Config.")  # type: ignore[index]
    internal, labels, options = _flag(body, "Internal"), _str_map(body, "Labels"), _str_map(body, "Options")
    net = await svc.run(
        _with, lambda n: n.create(name, subnet, gateway, internal=internal, labels=labels, options=options)
    )
    svc.events.emit("network", "create", net.id, {"name": net.name, "type": "bridge"})  # type: ignore[attr-defined]
    return json_response({"Id": net.id, "Warning": ""}, 201)  # type: ignore[attr-defined]


async def remove(svc: Service, req: Request) -> Response:
    ref = req.params["id"]
    if ref in _MODES:
        from kobako.errors import Conflict

        raise Conflict(f"{ref} is a pre-defined network and cannot be removed")
    net = await svc.run(_with, lambda n: n.remove(ref))
    svc.events.emit("network", "destroy", net.id, {"name": net.name, "type": "bridge"})  # type: ignore[attr-defined]
    return Response(204)


async def prune(svc: Service, req: Request) -> Response:
    parse_filters(req.arg("filters"), ("until", "label"))
    removed = await svc.run(_with, lambda n: n.prune())
    return json_response({"NetworksDeleted": removed})


ROUTES = [
    ("GET", "/networks", list_networks),
    ("POST", "/networks/create", create),
    ("POST", "/networks/prune", prune),
    ("GET", "/networks/{id}", inspect),
    ("DELETE", "/networks/{id}", remove),
]

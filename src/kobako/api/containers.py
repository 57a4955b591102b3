"""Container lifecycle endpoints: create, list, inspect, start, stop, kill, restart, rename, wait, remove.

Every verb goes through the same engine calls as the CLI (kobako.engine.service, control, inspect), on the
thread pool; a container made by one is seen and controlled by the other. Starts take a monitor from the pool
the fork server keeps filled, and hand its attach socket to kobako.api.monitors.
"""

from __future__ import annotations

import asyncio
import time

from kobako.api.filters import label_match, parse_filters
from kobako.api.http import HTTPError, Request, Response, json_response
from kobako.errors import Conflict, KobakoError, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.api.app import Service
    from kobako.engine.containers import ContainerRecord

_LIST_FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "before", "since", "volume", "network",
                 "health", "isolation", "is-task", "publish", "expose")  # fmt: skip


async def record_of(svc: Service, ref: str) -> ContainerRecord:
    return await svc.run(svc.store.get, ref)  # type: ignore[return-value]


def _attrs(record: ContainerRecord, **extra: str) -> dict[str, str]:
    return {**record.labels, "image": record.image, "name": record.name, **extra}


# --- create / list / inspect ---------------------------------------------------------------------------


def _create(svc: Service, body: object, name: str) -> ContainerRecord:
    from kobako.api.createopts import run_options
    from kobako.engine import service

    opts, image, cmd, entrypoint = run_options(body, name)
    record = service.create(svc.store, opts, image, cmd, keep_mounted=False)
    if entrypoint and len(entrypoint) > 1:  # the record shows the Entrypoint and Cmd as given
        record.config["Entrypoint"], record.config["Cmd"] = entrypoint, cmd[len(entrypoint) - 1 :] or None
        svc.store.save(record)
    return record


async def create(svc: Service, req: Request) -> Response:
    name = req.arg("name")
    body = await req.json()
    record: ContainerRecord = await svc.run(_create, svc, body, name)  # type: ignore[assignment]
    svc.events.emit("container", "create", record.id, _attrs(record))
    return json_response({"Id": record.id, "Warnings": []}, 201)


def _row(svc: Service, record: ContainerRecord, now: float) -> tuple[dict, object]:
    from kobako.engine import inspect, tasks
    from kobako.engine.clock import parse

    st = tasks.observe(svc.store, record.id)
    row = {
        "Id": record.id, "Names": ["/" + record.name], "Image": record.image, "ImageID": record.image_id,
        "Command": " ".join([record.path, *record.args]).strip(), "Created": int(parse(record.created)),
        "Ports": [], "Labels": record.labels, "State": inspect.state_name(st),
        "Status": inspect.status_text(st, now),
        "HostConfig": {"NetworkMode": record.host_config.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": {}}, "Mounts": record.mounts,
    }  # fmt: skip
    return row, st


def _list(svc: Service, all_: bool, limit: int, filters: dict[str, list[str]]) -> list[dict]:
    now = time.time()
    rows = []
    for record in svc.store.list():
        row, st = _row(svc, record, now)
        if not all_ and not filters.get("status") and st.status not in ("running", "paused", "restarting"):  # type: ignore[attr-defined]
            continue
        if not _matches(record, row, st, filters):
            continue
        rows.append(row)
        if 0 < limit <= len(rows):
            break
    return rows


def _matches(record: ContainerRecord, row: dict, st: object, filters: dict[str, list[str]]) -> bool:
    checks = {
        "id": lambda v: record.id.startswith(v),
        "name": lambda v: v.lstrip("/") in record.name,
        "status": lambda v: row["State"] == v,
        "exited": lambda v: row["State"] == "exited" and str(st.exit_code) == v,  # type: ignore[attr-defined]
        "ancestor": lambda v: (
            v in (record.image, record.image_id) or record.image_id.startswith("sha256:" + v)
        ),
    }
    for key, wanted in filters.items():
        if key == "label":
            if not label_match(record.labels, wanted):
                return False
        elif key in checks and not any(checks[key](v) for v in wanted):
            return False
    return True


async def list_containers(svc: Service, req: Request) -> Response:
    filters = parse_filters(req.arg("filters"), _LIST_FILTERS)
    rows = await svc.run(_list, svc, req.flag("all"), req.integer("limit", -1), filters)
    return json_response(rows)


async def inspect(svc: Service, req: Request) -> Response:
    from kobako.engine.inspect import inspect_data

    record = await record_of(svc, req.params["id"])
    return json_response(await svc.run(inspect_data, svc.store, record))


# --- start / stop / kill / restart ------------------------------------------------------------------------


def _start(svc: Service, record: ContainerRecord) -> tuple[object, object, list] | None:
    from kobako.engine import service, tasks

    if tasks.observe(svc.store, record.id).status in ("running", "paused"):
        return None
    prefork = svc.pool.take()
    try:
        return service.start(svc.store, record, prefork)  # type: ignore[arg-type]
    except BaseException:
        prefork.cancel()  # not handed over: the waiting monitor ends unused
        raise


async def start_record(svc: Service, record: ContainerRecord) -> bool:
    """Start through the pool; False when it was already running. Start failures are 400 (cannot execute,
    not found) or 500, and an auto-remove container that failed to start is removed, as dockerd does."""
    from kobako.engine import service

    try:
        started = await svc.run(_start, svc, record)
    except service.StartFailed as exc:
        if record.auto_remove:
            await svc.run(_remove_quietly, svc, record)
        message = str(exc)
        if exc.exit_code == 127 and "no such file" not in message.lower():
            message += ": executable file not found in $PATH"
        raise HTTPError(400 if exc.exit_code in (126, 127) else 500, message) from exc
    finally:
        asyncio.get_running_loop().run_in_executor(svc.executor, svc.pool.refill)
    if started is None:
        return False
    sock, reader, pending = started  # type: ignore[misc]
    svc.monitors.started(record.id, sock, pending, reader, record.auto_remove)  # type: ignore[arg-type]
    svc.events.emit("container", "start", record.id, _attrs(record))
    return True


def _remove_quietly(svc: Service, record: ContainerRecord) -> None:
    from kobako.engine import service

    try:
        service.remove(svc.store, record, volumes=True, force=True)
    except KobakoError:
        pass


async def start(svc: Service, req: Request) -> Response:
    record = await record_of(svc, req.params["id"])
    return Response(204 if await start_record(svc, record) else 304)


def _timeout(req: Request) -> int | None:
    raw = req.arg("t") or req.arg("timeout")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise HTTPError(400, f"invalid timeout {raw!r}: a number of seconds") from None


async def stop(svc: Service, req: Request) -> Response:
    from kobako.engine import control, tasks

    record = await record_of(svc, req.params["id"])
    st = await svc.run(tasks.observe, svc.store, record.id)
    if st.status not in tasks.ACTIVE:  # type: ignore[attr-defined]
        return Response(304)
    await svc.run(control.stop, svc.store, record, _timeout(req), req.arg("signal") or None)
    svc.events.emit("container", "stop", record.id, _attrs(record))
    return Response(204)


async def kill(svc: Service, req: Request) -> Response:
    from kobako.engine import control

    record = await record_of(svc, req.params["id"])
    signal = req.arg("signal") or "KILL"
    await svc.run(control.kill, svc.store, record, signal)
    svc.events.emit("container", "kill", record.id, _attrs(record, signal=signal))
    return Response(204)


async def restart(svc: Service, req: Request) -> Response:
    from kobako.engine import control

    record = await record_of(svc, req.params["id"])
    await svc.run(control.stop, svc.store, record, _timeout(req), req.arg("signal") or None)
    await start_record(svc, record)
    svc.events.emit("container", "restart", record.id, _attrs(record))
    return Response(204)


async def rename(svc: Service, req: Request) -> Response:
    record = await record_of(svc, req.params["id"])
    new = req.arg("name")
    if not new:
        raise HTTPError(400, "a new name is required (?name=)")

    def act() -> None:
        with svc.store.lock(record.id):
            svc.store.rename(svc.store.load(record.id), new)

    await svc.run(act)
    svc.events.emit("container", "rename", record.id, _attrs(record, oldName="/" + record.name))
    return Response(204)


async def remove(svc: Service, req: Request) -> Response:
    from kobako.engine import control

    record = await record_of(svc, req.params["id"])
    if req.flag("link"):
        raise HTTPError(400, "links are not supported")
    await svc.run(control.remove, svc.store, record, force=req.flag("force"), volumes=req.flag("v"))
    svc.events.emit("container", "destroy", record.id, _attrs(record))
    return Response(204)


# --- wait -----------------------------------------------------------------------------------------------


async def wait(svc: Service, req: Request) -> None:
    """Headers at once (the client starts the container only once they arrive), the result when it comes."""
    from kobako.engine import tasks

    condition = req.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise HTTPError(400, f"invalid condition {condition!r}: not-running, next-exit or removed")
    record = await record_of(svc, req.params["id"])
    task = svc.monitors.get(record.id)
    task.users += 1
    try:
        seen_exits = task.exits
        first = await svc.run(_observe, svc, record.id)
        finished0 = first.finished_at if first else ""  # type: ignore[attr-defined]
        seen_active = bool(first) and first.status in tasks.ACTIVE  # type: ignore[attr-defined]
        stream = svc.stream(req)
        await stream.start()
        code, error = 0, ""
        while True:
            if condition == "removed" and task.removed:
                code, error = task.exit_code or 0, task.remove_error
                break
            if condition != "removed" and task.exits > seen_exits:
                code = task.exit_code or 0
                break
            st = await svc.run(_observe, svc, record.id)
            if st is None:  # removed (by an auto-remove, or by someone): that ends every condition
                code = task.exit_code or 0
                break
            active = st.status in tasks.ACTIVE  # type: ignore[attr-defined]
            seen_active = seen_active or active
            moved = seen_active or st.finished_at != finished0  # type: ignore[attr-defined]
            if not active and (condition == "not-running" or (condition == "next-exit" and moved)):
                code = st.exit_code  # type: ignore[attr-defined]
                break
            await task.wait_change(0.2)
        await stream.send_json({"StatusCode": code, "Error": {"Message": error} if error else None})
        await stream.close()
    finally:
        svc.monitors.release(task)


def _observe(svc: Service, container_id: str) -> object:
    """The task's state, None once the record is gone."""
    from kobako.engine import tasks

    if not _exists(svc, container_id):
        return None
    return tasks.observe(svc.store, container_id)


def _exists(svc: Service, container_id: str) -> bool:
    try:
        svc.store.load(container_id)
    except NotFound:
        return False
    return True


async def prune(svc: Service, req: Request) -> Response:
    from kobako.engine import service, tasks

    parse_filters(req.arg("filters"), ("until", "label"))

    def act() -> list[str]:
        removed = []
        for record in svc.store.list():
            if tasks.observe(svc.store, record.id).status in tasks.ACTIVE:
                continue
            try:
                with svc.store.lock(record.id):
                    service.remove(svc.store, record, volumes=False)
                removed.append(record.id)
            except (Conflict, NotFound):
                continue
        return removed

    removed = await svc.run(act)
    return json_response({"ContainersDeleted": removed, "SpaceReclaimed": 0})


ROUTES = [
    ("POST", "/containers/create", create),
    ("GET", "/containers/json", list_containers),
    ("POST", "/containers/prune", prune),
    ("GET", "/containers/{id}/json", inspect),
    ("POST", "/containers/{id}/start", start),
    ("POST", "/containers/{id}/stop", stop),
    ("POST", "/containers/{id}/kill", kill),
    ("POST", "/containers/{id}/restart", restart),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/{id}/wait", wait),
    ("DELETE", "/containers/{id}", remove),
]

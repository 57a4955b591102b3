"""Container byte and number streams: attach (hijacked), resize, logs (json-file, followed), stats."""

from __future__ import annotations

import asyncio
import os
import threading

from kobako.api.containers import record_of
from kobako.api.http import HTTPError, Request, Response
from kobako.api.streams import MULTIPLEXED, RAW, STDERR, STDOUT, Attached, frame, hijack

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.api.app import Service
    from kobako.engine.containers import ContainerRecord


async def attach(svc: Service, req: Request) -> None:
    from kobako.engine import logs

    record = await record_of(svc, req.params["id"])
    want_in, want_out, want_err = req.flag("stdin"), req.flag("stdout"), req.flag("stderr")
    follow, replay = req.flag("stream"), req.flag("logs")
    task = svc.monitors.get(record.id)
    task.users += 1
    try:
        await hijack(req.writer, req.headers, svc.common_headers(), record.tty, req.api_version)
        req.hijacked = True
        client = Attached(req.reader, req.writer, record.tty, want_in, want_out, want_err)
        if replay:
            entries, _ino, _off = await svc.run(logs.read, svc.store.path(record.id, logs.LOG))
            for entry in entries:  # type: ignore[attr-defined]
                await client.send(STDOUT if entry.stream == "stdout" else STDERR, entry.log.encode())
        if not follow:
            await client.finish()
            return
        task.clients.append(client)
        if want_in and record.interactive:
            asyncio.get_running_loop().create_task(svc.monitors.pump_stdin(task, client))
        svc.events.emit("container", "attach", record.id, {"name": record.name, "image": record.image})
        await client.closed.wait()
    finally:
        svc.monitors.release(task)


async def resize(svc: Service, req: Request) -> Response:
    record = await record_of(svc, req.params["id"])
    rows, cols = req.integer("h", 0), req.integer("w", 0)
    if not 0 < rows < 65536 or not 0 < cols < 65536:
        raise HTTPError(400, f"invalid size {rows}x{cols}: h and w must be between 1 and 65535")
    await svc.monitors.resize(record.id, rows, cols)
    return Response(200, b"", "text/plain")


# --- logs -----------------------------------------------------------------------------------------------


def _time_arg(req: Request, name: str) -> float:
    raw = req.arg(name)
    if not raw or raw == "0":
        return 0.0
    try:
        return float(raw)
    except ValueError:
        from kobako.images.inspect import parse_time

        value = parse_time(raw)
        if value is None:
            raise HTTPError(
                400, f"invalid {name} {raw!r}: seconds since the epoch or an RFC 3339 time"
            ) from None
        return value


async def logs(svc: Service, req: Request) -> None:
    from kobako.engine import logs as logfile
    from kobako.engine import tasks
    from kobako.engine.clock import parse

    record = await record_of(svc, req.params["id"])
    want = {"stdout": req.flag("stdout"), "stderr": req.flag("stderr")}
    if not any(want.values()):
        raise HTTPError(400, "you must choose at least one stream (stdout=1 or stderr=1)")
    tail_text = req.arg("tail", "all")
    if tail_text != "all" and not tail_text.lstrip("-").isdigit():
        raise HTTPError(400, f"invalid tail {tail_text!r}: a number or 'all'")
    tail = -1 if tail_text == "all" or int(tail_text) < 0 else int(tail_text)
    since, until = _time_arg(req, "since"), _time_arg(req, "until")
    stamps, follow = req.flag("timestamps"), req.flag("follow")
    path = svc.store.path(record.id, logfile.LOG)

    def encode(entry: object) -> bytes:
        t = parse(entry.time)  # type: ignore[attr-defined]
        if not want.get(entry.stream, False) or (since and t < since) or (until and t > until):  # type: ignore[attr-defined]
            return b""
        text = (f"{entry.time} " if stamps else "") + entry.log  # type: ignore[attr-defined]
        data = text.encode()
        return data if record.tty else frame(STDOUT if entry.stream == "stdout" else STDERR, data)  # type: ignore[attr-defined]

    entries, ino, offset = await svc.run(logfile.read, path, tail)  # type: ignore[misc]
    stream = svc.stream(req)
    await stream.start(content_type=RAW if record.tty else MULTIPLEXED)
    await stream.send(b"".join(encode(e) for e in entries))
    if follow:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        stop = threading.Event()

        def pump() -> None:
            def running() -> bool:
                return not stop.is_set() and tasks.is_active(svc.store, record.id)

            try:
                for entry in logfile.follow(path, ino, offset, running):
                    asyncio.run_coroutine_threadsafe(queue.put(encode(entry)), loop).result()
            finally:
                asyncio.run_coroutine_threadsafe(queue.put(None), loop)

        reader = loop.run_in_executor(svc.executor, pump)
        gone = asyncio.ensure_future(req.closed())
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                data = getter.result()
                if data is None:
                    break
                await stream.send(data)
        finally:
            stop.set()
            gone.cancel()
            while not reader.done():  # let the follower see the stop and end
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    await asyncio.sleep(0.02)
    await stream.close()


# --- stats ----------------------------------------------------------------------------------------------


def _system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def _sample(svc: Service, record: ContainerRecord) -> dict:
    """One Docker stats object without ``precpu_stats`` (zeros when the container is not running)."""
    from kobako.engine import inspect
    from kobako.engine.clock import rfc3339
    from kobako.errors import KobakoError

    try:
        raw = inspect.cgroup(record).stats()  # type: ignore[attr-defined]
    except (KobakoError, OSError):
        raw = {}
    cpu = raw.get("cpu", {})
    usage = cpu.get("usage", {})
    mem = raw.get("memory", {})
    limit = mem.get("usage", {}).get("limit", 0)
    with open("/proc/meminfo") as f:
        host_mem = int(f.readline().split()[1]) * 1024
    throttling = cpu.get("throttling", {})
    return {
        "read": rfc3339(), "name": "/" + record.name, "id": record.id,
        "pids_stats": {"current": raw.get("pids", {}).get("current", 0)},
        "blkio_stats": {"io_service_bytes_recursive": raw.get("blkio", {}).get("ioServiceBytesRecursive") or None},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {"total_usage": usage.get("total", 0), "percpu_usage": usage.get("percpu") or None,
                          "usage_in_kernelmode": usage.get("kernel", 0), "usage_in_usermode": usage.get("user", 0)},
            "system_cpu_usage": _system_cpu_ns() if raw else 0, "online_cpus": os.cpu_count() or 1,
            "throttling_data": {"periods": throttling.get("periods", 0),
                                "throttled_periods": throttling.get("throttled_periods", 0),
                                "throttled_time": throttling.get("throttled_time", 0)},
        },
        "memory_stats": {"usage": mem.get("usage", {}).get("usage", 0), "max_usage": mem.get("usage", {}).get("max", 0),
                         "limit": limit if 0 < limit < host_mem else host_mem, "stats": mem.get("raw", {})}
        if raw else {},
    }  # fmt: skip


async def stats(svc: Service, req: Request) -> None:
    record = await record_of(svc, req.params["id"])
    streaming = req.flag("stream", True)
    one_shot = req.flag("one-shot")
    if one_shot and streaming:
        raise HTTPError(400, "cannot have stream=true and one-shot=true")
    stream = svc.stream(req)
    previous = await svc.run(_sample, svc, record)
    if not streaming and not one_shot:  # CPU percentages need two samples
        await asyncio.sleep(0.5)
        previous, current = previous, await svc.run(_sample, svc, record)
    else:
        current = previous
    await stream.start()
    gone = asyncio.ensure_future(req.closed())
    try:
        while True:
            out = dict(current)  # type: ignore[call-overload]
            out["preread"] = previous.get("read", "")  # type: ignore[union-attr]
            out["precpu_stats"] = previous.get("cpu_stats", {}) if previous is not current else {}  # type: ignore[union-attr]
            await stream.send_json(out)
            if not streaming or not out.get("memory_stats"):
                break
            done, _ = await asyncio.wait({gone}, timeout=1.0)
            if done:
                return
            previous, current = current, await svc.run(_sample, svc, record)
    finally:
        gone.cancel()
    await stream.close()


def _top(svc: Service, record: ContainerRecord, ps_args: str) -> dict:
    import subprocess

    from kobako.engine import inspect

    wanted = set(inspect.cgroup(record).pids())  # type: ignore[attr-defined]
    args = ps_args.split() or ["-ef"]
    if any(not a.replace("-", "").replace(",", "").isalnum() for a in args):
        raise HTTPError(400, f"invalid ps_args {ps_args!r}")
    out = subprocess.run(["ps", *args], capture_output=True, text=True, check=False, timeout=10)
    lines = out.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise HTTPError(500, "ps output has no PID column")
    col = titles.index("PID")
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}


async def top(svc: Service, req: Request) -> Response:
    from kobako.api.http import json_response

    record = await record_of(svc, req.params["id"])
    return json_response(await svc.run(_top, svc, record, req.arg("ps_args")))


ROUTES = [
    ("POST", "/containers/{id}/attach", attach),
    ("POST", "/containers/{id}/resize", resize),
    ("GET", "/containers/{id}/logs", logs),
    ("GET", "/containers/{id}/stats", stats),
    ("GET", "/containers/{id}/top", top),
]

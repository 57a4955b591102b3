"""``GET /events``: what the service did (container, image, volume, network events) as Docker's JSON stream.

Every event is appended to ``<run_root>/events.log`` (JSON lines; cut to its newest half past 4 MiB) and handed
to live subscribers. ``since`` replays from the log, ``until`` ends the stream; ``filters`` takes Docker's
``type``, ``event``, ``container``, ``image``, ``label``, ``volume``, ``network`` keys. Only what goes through
the service is seen: a `kobako run` outside it writes no event.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

from kobako.api.filters import parse_filters
from kobako.api.http import HTTPError, Request, Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.api.app import Service

_MAX_LOG = 4 * 1024 * 1024
_FILTER_KEYS = ("type", "event", "container", "image", "label", "volume", "network", "scope")


class EventLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self.subscribers: set[asyncio.Queue] = set()
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()

    def emit(self, kind: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> None:
        now = time.time_ns()
        event: dict[str, object] = {
            "Type": kind, "Action": action, "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
            "scope": "local", "time": now // 1_000_000_000, "timeNano": now,
        }  # fmt: skip
        if kind == "container":  # the pre-1.22 fields docker still sends for containers
            event["status"], event["id"] = action, actor_id
            event["from"] = (attributes or {}).get("image", "")
        line = json.dumps(event, separators=(",", ":")) + "\n"
        try:
            self._append(line)
        except OSError:
            pass  # the live stream still gets it
        if threading.get_ident() == self.loop_thread:
            self._publish(event)
        else:  # emitted by a worker thread: queues belong to the loop
            self.loop.call_soon_threadsafe(self._publish, event)

    def _publish(self, event: dict) -> None:
        for queue in list(self.subscribers):
            if queue.qsize() < 10000:  # a reader that stopped reading loses events, never the service memory
                queue.put_nowait(event)

    def _append(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode())
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > _MAX_LOG:
            with open(self.path, "rb") as f:
                f.seek(size // 2)
                f.readline()
                rest = f.read()
            tmp = f"{self.path}.tmp"
            with open(tmp, "wb") as f:
                f.write(rest)
            os.replace(tmp, self.path)

    def history(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for raw in lines:
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out


def _timestamp(text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    from kobako.images.inspect import parse_time

    value = parse_time(text)
    if value is None:
        raise HTTPError(400, f"invalid {name} {text!r}: want seconds since the epoch or an RFC 3339 time")
    return value


def matches(event: dict, filters: dict[str, list[str]]) -> bool:
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    kind = event.get("Type", "")
    for key, wanted in filters.items():
        if key == "type" and kind not in wanted:
            return False
        if key == "event" and event.get("Action") not in wanted:
            return False
        if key == "scope" and "local" not in wanted:
            return False
        if key in ("container", "volume", "network") and (
            kind != key or not any(_names(actor, w) for w in wanted)
        ):
            return False
        if key == "image" and not any(
            w in (attrs.get("image"), actor.get("ID"), attrs.get("name")) for w in wanted
        ):
            return False
        if key == "label":
            for item in wanted:
                k, eq, v = item.partition("=")
                if k not in attrs or (eq and attrs[k] != v):
                    return False
    return True


def _names(actor: dict, wanted: str) -> bool:
    ident = str(actor.get("ID", ""))
    return wanted in (ident, (actor.get("Attributes") or {}).get("name")) or ident.startswith(wanted)


async def get_events(svc: Service, req: Request) -> None:
    since = _timestamp(req.arg("since"), "since")
    until = _timestamp(req.arg("until"), "until")
    filters = parse_filters(req.arg("filters"), _FILTER_KEYS)
    queue: asyncio.Queue = asyncio.Queue()
    svc.events.subscribers.add(queue)  # before the replay: nothing falls between the two
    stream = Stream(req.writer, svc.common_headers())
    try:
        await stream.start()
        seen = 0
        if since is not None:
            for event in svc.events.history():
                t = event.get("timeNano", 0) / 1e9
                if t >= since and (until is None or t <= until) and matches(event, filters):
                    await stream.send_json(event)
                    seen = max(seen, int(event.get("timeNano", 0)))
        gone = asyncio.ensure_future(req.closed())
        try:
            while until is None or time.time() < until:
                timeout = None if until is None else max(until - time.time(), 0)
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    if gone in done:
                        return
                    break
                event = getter.result()
                if int(event.get("timeNano", 0)) > seen and matches(event, filters):
                    await stream.send_json(event)
        finally:
            gone.cancel()
        await stream.close()
    finally:
        svc.events.subscribers.discard(queue)

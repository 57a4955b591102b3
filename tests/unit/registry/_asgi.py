"""A synchronous bridge from httpx requests to an ASGI app, so the kobako client (and plain test calls) reach
the registry server in-process through its ASGI interface."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from urllib.parse import unquote

import httpx

CHUNK = 64 << 10


class ASGIBridge:
    """``bridge(httpx.Request) -> httpx.Response``: one event loop, requests serialised (the client's threads
    may call it concurrently)."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []

    def close(self) -> None:
        self.loop.close()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            # "asgi_path" lets a test send what a client library would normalise away (``..`` segments)
            "path": request.extensions.get("asgi_path") or unquote(url.raw_path.decode().partition("?")[0]),
            "raw_path": url.raw_path.partition(b"?")[0],
            "query_string": url.query,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port or 80),
            "client": ("127.0.0.1", 40000),
            "extensions": {},
        }
        chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)] or [b""]
        state: dict = {"status": 500, "headers": [], "body": []}

        async def receive() -> dict:
            if chunks:
                chunk = chunks.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                state["body"].append(message.get("body", b""))

        with self._lock:
            self.calls.append((request.method, str(url)))
            self.loop.run_until_complete(self.app(scope, receive, send))
        return httpx.Response(state["status"], headers=state["headers"], content=b"".join(state["body"]),
                              request=request)  # fmt: skip

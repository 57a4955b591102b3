"""The one-method seam every registry request goes through: ``handle(request) -> response``.

Requests and responses are httpx's types. :class:`HTTPTransport` sends them over a pooled httpx client with
streamed responses (the caller reads or iterates the body, then closes it); :class:`HandlerTransport` calls a
plain function, which is how unit tests stand in for a registry (DESIGN.md, example 9). httpx is imported only
when a transport is made, never at CLI start.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    import httpx
else:
    Protocol = object

#: Connect and read timeouts in seconds: a stalled peer is an error, a slow big blob is not (reads are
#: per chunk).
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 300.0
USER_AGENT = "kobako/0.1"


class Transport(Protocol):
    def handle(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the response body may still be streaming. httpx.TransportError on failure."""
        ...

    def close(self) -> None: ...


class HTTPTransport:
    """Real HTTP(S) through one pooled httpx client. ``verify`` is True, False or a CA bundle path."""

    def __init__(self, verify: bool | str = True, max_connections: int = 16) -> None:
        import httpx

        if isinstance(verify, str):  # a CA bundle: httpx wants it as an SSL context
            import ssl

            verify = ssl.create_default_context(cafile=verify)
        self._client = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=True,  # blobs may live behind a redirect; httpx drops Authorization cross-origin
            headers={"user-agent": USER_AGENT},
            trust_env=False,  # never a proxy from the environment: loopback registries must stay loopback
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        return self._client.send(request, stream=True)

    def close(self) -> None:
        self._client.close()


class HandlerTransport:
    """A function standing in for the network: ``HandlerTransport(lambda request: httpx.Response(200))``."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.stream is not None and not isinstance(request.stream, bytes):
            request.read()  # a handler sees the body whole, as a server would
        response = self.handler(request)
        if response.is_stream_consumed:  # built from bytes: make it a stream, as a network response is
            import httpx

            response = httpx.Response(response.status_code, headers=response.headers,
                                      stream=httpx.ByteStream(response.content))  # fmt: skip
        response.request = request
        return response

    def close(self) -> None:
        pass

"""One registry endpoint: picks the scheme, authorizes requests, retries once after a challenge, and turns
HTTP failures into kobako errors carrying the registry's own message.

The first request pings ``/v2/``: HTTPS, then plain HTTP for insecure endpoints when the host does not speak
TLS (Docker's rule for insecure registries). The ping also tells the auth scheme, so later requests carry
their credentials or token up front and a big upload is not sent twice.
"""

from __future__ import annotations

import threading

from kobako.errors import Internal, InvalidArgument, KobakoError, NotFound, PermissionDenied, Unavailable
from kobako.registry.client.auth import Authorizer, get_credentials
from kobako.registry.client.transport import HTTPTransport

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import httpx

    from kobako.registry.client.hosts import Endpoint
    from kobako.registry.client.transport import Transport

    Body = bytes | Callable[[], Iterable[bytes]] | None

_ERROR_BODY_LIMIT = 64 << 10


class RegistryHTTPError(KobakoError):
    """Mixin data for HTTP failures: ``status`` and the registry's error ``codes``."""

    status = 0
    codes: tuple[str, ...] = ()


def _error(status: int, codes: list[str], message: str) -> KobakoError:
    if status in (401, 403):
        cls: type[KobakoError] = PermissionDenied
    elif status == 404:
        cls = NotFound
    elif status in (400, 405, 413, 415, 416):
        cls = InvalidArgument
    elif status == 429 or status >= 500:
        cls = Unavailable
    else:
        cls = Internal
    err = type(cls.__name__, (cls, RegistryHTTPError), {})(message)
    err.status = status
    err.codes = tuple(codes)
    return err


def error_from(response: httpx.Response, what: str) -> KobakoError:
    """A kobako error for a failed response (its body is read, bounded, and the response closed)."""
    codes, messages = [], []
    try:
        raw = b""
        for chunk in response.iter_raw():
            raw += chunk
            if len(raw) > _ERROR_BODY_LIMIT:
                break
        from kobako.oci.jsoncodec import loads

        doc = loads(raw[:_ERROR_BODY_LIMIT], "error")
        for e in doc.get("errors", []) if isinstance(doc, dict) else []:
            if isinstance(e, dict):
                codes.append(str(e.get("code", "UNKNOWN")))
                messages.append(f"{e.get('code', 'UNKNOWN')}: {e.get('message', '')}".rstrip(": "))
    except Exception:  # an HTML error page or a cut connection: the status alone says enough
        pass
    finally:
        response.close()
    detail = "; ".join(messages) or f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return _error(response.status_code, codes, f"{what}: {detail}")


class Remote:
    def __init__(self, endpoint: Endpoint, transport: Transport | None = None,
                 credentials: tuple[str, str] | bool | None = True, domain: str | None = None) -> None:  # fmt: skip
        """``credentials``: a (user, password), None for anonymous, True to look them up for ``domain``."""
        self.endpoint = endpoint
        self.domain = domain or endpoint.host
        if transport is None:
            verify: bool | str = False if endpoint.insecure else (endpoint.ca or True)
            transport = HTTPTransport(verify=verify)
        self.transport = transport
        if credentials is True:
            credentials = get_credentials(self.domain) or (
                get_credentials(endpoint.host) if endpoint.host != self.domain else None
            )
        self.auth = Authorizer(self.domain, credentials or None, self._send)
        self.scheme = ""
        self._ping_lock = threading.Lock()

    def close(self) -> None:
        self.transport.close()

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.endpoint.host}"

    def _send(self, request: httpx.Request) -> httpx.Response:
        import httpx

        try:
            return self.transport.handle(request)
        except httpx.TransportError as exc:
            raise Unavailable(f"{request.url.host}: {type(exc).__name__}: {exc}") from exc

    def ping(self) -> None:
        """Choose the scheme and learn the auth scheme (once)."""
        import httpx

        with self._ping_lock:
            if self.scheme:
                return
            schemes = ["https", "http"] if self.endpoint.insecure else ["https"]
            failure: Exception | None = None
            for scheme in schemes:
                try:
                    response = self.transport.handle(
                        httpx.Request("GET", f"{scheme}://{self.endpoint.host}/v2/")
                    )
                except httpx.TransportError as exc:
                    failure = exc
                    continue
                response.close()
                if response.status_code == 401:
                    try:
                        self.auth.on_unauthorized(response, [])
                    except PermissionDenied:
                        pass  # no credentials: anonymous requests may still be allowed, they will tell
                elif response.status_code != 200 and response.status_code != 404:
                    # 404: some registries answer their API without the ping; requests will tell
                    raise error_from(response, f"{self.endpoint.host}: /v2/")
                self.scheme = scheme
                return
            raise Unavailable(f"cannot reach registry {self.endpoint.host}: {failure}") from failure

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.base + path_or_url

    def request(self, method: str, path_or_url: str, *, scopes: list[str], headers: dict[str, str] | None = None,
                body: Body = None, ok: tuple[int, ...] = (200,), what: str = "") -> httpx.Response:  # fmt: skip
        """Send and return the response (body unread: read or iterate it, then close it) when its status is in
        ``ok``; raise the matching kobako error otherwise."""
        import httpx

        self.ping()
        scopes = list(scopes)
        for attempt in range(3):
            content = body() if callable(body) else body
            request = httpx.Request(method, self.url(path_or_url), headers=headers, content=content)
            self.auth.apply(request, scopes)
            response = self._send(request)
            if response.status_code == 401 and attempt < 2 and self.auth.on_unauthorized(response, scopes):
                response.close()
                continue
            if response.status_code in ok:
                return response
            raise error_from(response, what or f"{method} {request.url.path}")
        raise PermissionDenied(f"{self.endpoint.host}: authentication failed")

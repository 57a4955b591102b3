"""The client's authentication against the server in-process: the bearer token flow (a token endpoint and a
token-checking front written here), basic auth from stored credentials, and HTTPS → HTTP fallback for
insecure endpoints."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from _regtest import Registry, local_image, transports

from kobako.errors import PermissionDenied, Unavailable
from kobako.registry.client.hosts import Endpoint
from kobako.registry.client.pull import pull
from kobako.registry.client.push import push
from kobako.registry.client.remote import Remote
from kobako.registry.client.transport import HandlerTransport

Handler = Callable[[httpx.Request], httpx.Response]


def _token_front(registry: Registry, counters: dict[str, int]) -> Handler:
    """A registry that wants bearer tokens from auth.test, which wants basic u:p."""
    good = "Basic " + base64.b64encode(b"u:p").decode()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            counters["token"] += 1
            if request.headers.get("authorization") != good:
                return httpx.Response(401)
            scope = " ".join(request.url.params.get_list("scope"))
            return httpx.Response(200, json={"token": "tok " + scope, "expires_in": 300})
        path = request.url.path
        repo = path[4:].split("/blobs/")[0].split("/manifests/")[0]
        need = (
            f"repository:{repo}:pull" if request.method in ("GET", "HEAD") else f"repository:{repo}:pull,push"
        )
        token = request.headers.get("authorization", "")
        if path != "/v2/" and (not token.startswith("Bearer tok ") or need not in token):
            return httpx.Response(
                401,
                headers={
                    "www-authenticate": f'Bearer realm="https://auth.test/token",service="reg",scope="{need}"'
                },
                json={"errors": [{"code": "UNAUTHORIZED", "message": "token needed"}]},
            )
        if path == "/v2/" and not token:
            return httpx.Response(
                401, headers={"www-authenticate": 'Bearer realm="https://auth.test/token",service="reg"'}
            )
        return registry.bridge(request)

    return handle


def test_token_auth_push_and_pull(
    registry: Registry, svc_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from kobako.registry.client.auth import save_credentials

    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    counters = {"token": 0}
    handler = _token_front(registry, counters)
    src, dst = svc_factory("src"), svc_factory("dst")
    local_image(src, "registry.test/secure/app:1")
    with pytest.raises(PermissionDenied, match="token server refused"):
        push(src, "registry.test/secure/app:1", config={}, transport_factory=transports(handler))
    save_credentials("registry.test", "u", "p")
    counters["token"] = 0
    push(src, "registry.test/secure/app:1", config={}, transport_factory=transports(handler))
    assert counters["token"] == 1  # one token for the push scope, reused by every request
    pull(dst, "registry.test/secure/app:1", config={}, transport_factory=transports(handler))
    assert dst.resolve("registry.test/secure/app:1").id == src.resolve("registry.test/secure/app:1").id


def test_basic_auth_from_credentials(tmp_path: Path, svc_factory, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from kobako.registry.client.auth import save_credentials
    from kobako.registry.server.auth import hash_password

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"u:{hash_password('p', rounds=4)}\n")
    reg = Registry(tmp_path / "secure", htpasswd=str(htpasswd))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    try:
        src = svc_factory("src")
        local_image(src, "registry.test/app:1")
        with pytest.raises(PermissionDenied, match=r"kobako login registry\.test"):
            push(src, "registry.test/app:1", config={}, transport_factory=transports(reg.bridge))
        save_credentials("registry.test", "u", "wrong")
        with pytest.raises(PermissionDenied, match="invalid username or password"):
            push(src, "registry.test/app:1", config={}, transport_factory=transports(reg.bridge))
        save_credentials("registry.test", "u", "p")
        push(src, "registry.test/app:1", config={}, transport_factory=transports(reg.bridge))
    finally:
        reg.close()


def test_insecure_endpoint_falls_back_to_http(registry: Registry) -> None:
    schemes: list[str] = []

    def plain_http_only(request: httpx.Request) -> httpx.Response:
        schemes.append(request.url.scheme)
        if request.url.scheme == "https":
            raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number")
        return registry.bridge(request)

    remote = Remote(
        Endpoint("127.0.0.1:5000", insecure=True), HandlerTransport(plain_http_only), credentials=None
    )
    remote.ping()
    assert remote.scheme == "http" and schemes == ["https", "http"]
    strict = Remote(Endpoint("r.test", insecure=False), HandlerTransport(plain_http_only), credentials=None)
    with pytest.raises(Unavailable, match=r"cannot reach registry r\.test"):
        strict.ping()

"""Authentication and TLS against real servers on loopback: htpasswd basic auth with login/logout, anonymous
read, a bearer-token flow through a small token server written here, and HTTPS with a self-signed cert."""

from __future__ import annotations

import base64
import secrets
import shutil
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _regserver import Kobako, Server, free_port, wait_port

pytestmark = [pytest.mark.root]


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    from kobako.registry.server.auth import hash_password

    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{hash_password('wonderland', rounds=5)}\n")
    return path


def _image(k: Kobako, busybox_tar: Path, ref: str) -> None:
    k("import", str(busybox_tar), ref)


def test_htpasswd_login_push_pull_logout(servers: Callable[..., Server], kobako_factory, busybox_tar: Path,
                                         htpasswd: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    server = servers("--htpasswd", str(htpasswd))
    k = kobako_factory("k")
    ref = f"{server.addr}/secure/bb:1"
    _image(k, busybox_tar, ref)
    denied = k("push", ref, check=False)
    assert denied.returncode != 0 and f"kobako login {server.addr}" in denied.err
    wrong = k("login", server.addr, "-u", "alice", "--password-stdin", input=b"nope\n", check=False)
    assert wrong.returncode != 0 and "invalid username or password" in wrong.err
    assert not (k.root / "auth.json").exists()
    ok = k("login", server.addr, "-u", "alice", "--password-stdin", input=b"wonderland\n")
    assert "Login Succeeded" in ok.out
    auth_file = k.root / "auth.json"
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert base64.b64encode(b"alice:wonderland").decode() in auth_file.read_text()
    k("push", ref)
    other = Kobako(k.root.parent / "other", env={"REGISTRY_AUTH_FILE": str(auth_file)})
    other("pull", ref)  # credentials read from the file REGISTRY_AUTH_FILE names
    assert "Removing login credentials" in k("logout", server.addr).out
    assert k("logout", server.addr, check=False).returncode != 0
    after = kobako_factory("after")
    refused = after("pull", ref, check=False)
    assert refused.returncode != 0 and "authentication required" in refused.err


def test_anonymous_read(
    servers: Callable[..., Server], kobako_factory, busybox_tar: Path, htpasswd: Path
) -> None:  # type: ignore[no-untyped-def]
    server = servers("--htpasswd", str(htpasswd), "--anonymous-read")
    k = kobako_factory("k")
    ref = f"{server.addr}/pub/bb:1"
    _image(k, busybox_tar, ref)
    k("login", server.addr, "-u", "alice", "-p", "wonderland")
    k("push", ref)
    anonymous = kobako_factory("anon")
    anonymous("pull", ref)
    _image(anonymous, busybox_tar, f"{server.addr}/pub/bb:2")
    assert anonymous("push", f"{server.addr}/pub/bb:2", check=False).returncode != 0


class TokenRegistry:
    """A registry that takes only bearer tokens, and the token server issuing them (at /token, for user
    ``bob``/``builder``), in one ASGI app on 127.0.0.1 run by uvicorn in a thread."""

    def __init__(self, root: Path) -> None:
        from kobako.registry.server.app import RegistryApp

        self.inner = RegistryApp(str(root))
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.tokens: dict[str, set[str]] = {}
        self.token_requests: list[list[str]] = []

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        from kobako.registry.server.app import route
        from kobako.registry.server.asgi import Request

        if scope["path"] == "/token":
            await self._token(Request(scope, receive), send)
            return
        headers = dict((k.decode().lower(), v.decode()) for k, v in scope["headers"])
        found = route(scope["path"])
        need = ""
        if found and found[1]:
            action = "pull" if scope["method"] in ("GET", "HEAD") else "push"
            need = f"repository:{found[1]}:{action}"
        granted = self.tokens.get(headers.get("authorization", "").removeprefix("Bearer "))
        if granted is None or (need and need not in granted):
            challenge = f'Bearer realm="{self.realm}",service="kobako-test"'
            if need:
                pull_push = need if need.endswith(":pull") else need.replace(":push", ":pull,push")
                challenge += f',scope="{pull_push}"'
            await _respond(send, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}',
                           [(b"www-authenticate", challenge.encode())])  # fmt: skip
            return
        await self.inner(scope, receive, send)

    async def _token(self, req, send) -> None:  # type: ignore[no-untyped-def]
        scopes = [v for k, v in _query_pairs(req.scope) if k == "scope"]
        self.token_requests.append(scopes)
        good = "Basic " + base64.b64encode(b"bob:builder").decode()
        if req.header("authorization") != good:
            await _respond(send, 401, b'{"details":"bad credentials"}')
            return
        granted = set()
        for s in scopes:
            kind, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            granted.update(f"{kind}:{name}:{a}" for a in actions.split(","))
        token = secrets.token_hex(16)
        self.tokens[token] = granted
        body = f'{{"token": "{token}", "expires_in": 300}}'.encode()
        await _respond(send, 200, body)


def _query_pairs(scope: dict) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(scope.get("query_string", b"").decode())


async def _respond(send, status: int, body: bytes, headers: list | None = None) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[TokenRegistry]:
    import uvicorn

    app = TokenRegistry(tmp_path / "token-registry")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=app.port, log_level="warning",
                                           lifespan="off"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_port(app.port)
        yield app
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        app.inner.uploads.close()


def test_token_server_flow(token_registry: TokenRegistry, kobako_factory, busybox_tar: Path) -> None:  # type: ignore[no-untyped-def]
    addr = f"127.0.0.1:{token_registry.port}"
    k = kobako_factory("k")
    ref = f"{addr}/team/bb:1"
    _image(k, busybox_tar, ref)
    denied = k("push", ref, check=False)
    assert denied.returncode != 0 and "token server refused" in denied.err
    assert k("login", addr, "-u", "bob", "-p", "wrong", check=False).returncode != 0
    k("login", addr, "-u", "bob", "--password-stdin", input=b"builder")
    token_registry.token_requests.clear()
    k("push", ref)
    # one token for the push scope, cached for every request of the push
    assert token_registry.token_requests == [["repository:team/bb:pull,push"]]
    dst = Kobako(k.root.parent / "dst", env={"REGISTRY_AUTH_FILE": str(k.root / "auth.json")})
    token_registry.token_requests.clear()
    dst("pull", ref)
    assert token_registry.token_requests == [["repository:team/bb:pull"]]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_self_signed(servers: Callable[..., Server], kobako_factory, busybox_tar: Path,
                         certificate: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    cert, key = certificate
    server = servers("--tls-cert", str(cert), "--tls-key", str(key))
    k = kobako_factory("k")
    ref = f"{server.addr}/tls/bb:1"
    _image(k, busybox_tar, ref)
    k("push", ref)  # loopback is insecure by default (Docker's rule): HTTPS without verification
    strict = k.root / "registries.toml"
    strict.write_text(f'[registries."{server.addr}"]\ninsecure = false\n')
    refused = k("pull", ref, check=False)
    assert refused.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in refused.err
    assert k("pull", "--tls-verify=false", ref).returncode == 0
    strict.write_text(f'[registries."{server.addr}"]\ninsecure = false\nca = "{cert}"\n')
    dst = kobako_factory("dst")
    (dst.root).mkdir(parents=True, exist_ok=True)
    shutil.copy(strict, dst.root / "registries.toml")
    dst("pull", ref)  # verified against the CA

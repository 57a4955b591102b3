"""Client pieces without a server: challenge parsing, credential files, registries config, endpoints."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from kobako.errors import InvalidArgument, PermissionDenied
from kobako.registry.client import auth, hosts
from kobako.registry.client.auth import Authorizer, parse_challenges
from kobako.registry.client.hosts import endpoints, is_loopback, load_config, normalize_host


@pytest.mark.parametrize(
    ("header", "want"),
    [
        ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
         [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:a/b:pull,push"})]),
        ('Basic realm="kobako registry"', [("basic", {"realm": "kobako registry"})]),
        ('Basic realm="a, b", Bearer realm="r",service=s', [("basic", {"realm": "a, b"}), ("bearer", {"realm": "r", "service": "s"})]),
        ('Bearer realm="quo\\"te"', [("bearer", {"realm": 'quo"te'})]),
        ("Negotiate", [("negotiate", {})]),
        ("", []),
        ('BEARER  realm = "x" ,  scope="y"', [("bearer", {"realm": "x", "scope": "y"})]),
    ],
)  # fmt: skip
def test_parse_challenges(header: str, want: list) -> None:
    assert parse_challenges(header) == want


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KOBAKO_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("KOBAKO_REGISTRIES_CONF", raising=False)
    return tmp_path


def test_credentials_round_trip(state: Path) -> None:
    assert auth.get_credentials("localhost:5000") is None
    path = auth.save_credentials("http://LocalHost:5000/", "alice", "s3:cret")
    assert path == str(state / "root" / "auth.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.loads(Path(path).read_text())
    assert doc == {"auths": {"localhost:5000": {"auth": base64.b64encode(b"alice:s3:cret").decode()}}}
    assert auth.get_credentials("localhost:5000") == ("alice", "s3:cret")
    auth.save_credentials("localhost:5000", "bob", "x")  # replaces, not duplicates
    assert auth.get_credentials("localhost:5000") == ("bob", "x")
    assert auth.remove_credentials("localhost:5000") is True
    assert auth.remove_credentials("localhost:5000") is False
    assert auth.get_credentials("localhost:5000") is None


def test_credentials_keep_other_keys_and_mode(state: Path) -> None:
    path = state / "root" / "auth.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"auths": {}, "credHelpers": {"x": "y"}}))
    path.chmod(0o644)
    auth.save_credentials("r.test", "u", "p")
    assert json.loads(path.read_text())["credHelpers"] == {"x": "y"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_registry_auth_file_and_docker_config(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docker = state / "home" / ".docker" / "config.json"
    docker.parent.mkdir(parents=True)
    docker.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": base64.b64encode(b"d:h").decode()},
                                            "r.test": {"username": "plain", "password": "pw"}}}))  # fmt: skip
    assert auth.get_credentials("docker.io") == ("d", "h")
    assert auth.get_credentials("r.test") == ("plain", "pw")
    custom = state / "custom.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(custom))
    assert auth.get_credentials("docker.io") is None  # only the named file is read
    auth.save_credentials("docker.io", "me", "pw")
    assert auth.get_credentials("index.docker.io") == ("me", "pw")
    assert json.loads(custom.read_text())["auths"].keys() == {"docker.io"}


def test_bad_auth_files(state: Path) -> None:
    path = state / "root" / "auth.json"
    path.parent.mkdir(parents=True)
    path.write_text("[]")
    with pytest.raises(InvalidArgument):
        auth.get_credentials("x")
    path.write_text(json.dumps({"auths": {"x": {"auth": "%%%"}}}))
    with pytest.raises(InvalidArgument, match="base64"):
        auth.get_credentials("x")
    with pytest.raises(InvalidArgument):
        auth.save_credentials("y", "a:b", "c")


def test_hosts() -> None:
    assert normalize_host("https://Index.Docker.io/v1/") == "docker.io"
    assert normalize_host("localhost:5000") == "localhost:5000"
    for h in ("localhost", "localhost:5000", "127.0.0.1:80", "127.1.2.3", "[::1]:5000", "a.localhost"):
        assert is_loopback(h), h
    for h in ("docker.io", "10.0.0.1:5000", "example.com", "[2001:db8::1]:5000"):
        assert not is_loopback(h), h
    assert hosts.api_host("docker.io") == "registry-1.docker.io"


def test_registries_config(tmp_path: Path) -> None:
    conf = tmp_path / "registries.toml"
    conf.write_text(
        '[registries."docker.io"]\nmirrors = ["127.0.0.1:5001", "mirror.test"]\n'
        '[registries."mirror.test"]\ninsecure = true\n'
        '[registries."127.0.0.1:5443"]\ninsecure = false\nca = "/ca.pem"\n'
    )
    config = load_config(str(conf))
    eps = endpoints("docker.io", config)
    assert [(e.host, e.insecure, e.mirror) for e in eps] == [
        ("127.0.0.1:5001", True, True), ("mirror.test", True, True), ("registry-1.docker.io", False, False),
    ]  # fmt: skip
    assert [e.host for e in endpoints("docker.io", config, pull=False)] == ["registry-1.docker.io"]
    strict = endpoints("127.0.0.1:5443", config)[0]
    assert strict.insecure is False and strict.ca == "/ca.pem"
    assert endpoints("127.0.0.1:5443", config, tls_verify=False)[0].insecure is True
    assert endpoints("localhost:5000", {}, tls_verify=True)[0].insecure is False
    assert endpoints("r.test", {}, tls_verify=False)[0].insecure is True
    assert load_config(str(tmp_path / "missing.toml")) == {}


@pytest.mark.parametrize(
    "text",
    ["registries = 1", '[registries."x"]\nmirrors = "y"', '[registries."x"]\ninsecure = "yes"',
     '[registries."x"]\nbogus = 1', "not toml ["],
)  # fmt: skip
def test_registries_config_errors(tmp_path: Path, text: str) -> None:
    conf = tmp_path / "registries.toml"
    conf.write_text(text)
    with pytest.raises(InvalidArgument, match="registries"):
        load_config(str(conf))


def _token_server(tokens: list[httpx.Request], expires: int | None = 300):  # type: ignore[no-untyped-def]
    def send(request: httpx.Request) -> httpx.Response:
        tokens.append(request)
        if request.headers.get("authorization") != "Basic " + base64.b64encode(b"u:p").decode():
            return httpx.Response(401)
        scopes = ",".join(request.url.params.get_list("scope"))
        body = (
            {"token": f"T[{scopes}]"}
            if expires is None
            else {"access_token": f"T[{scopes}]", "expires_in": expires}
        )
        return httpx.Response(200, json=body)

    return send


def test_bearer_token_flow_and_cache() -> None:
    tokens: list[httpx.Request] = []
    a = Authorizer("r.test", ("u", "p"), _token_server(tokens))
    challenge = httpx.Response(
        401, headers={"www-authenticate": 'Bearer realm="https://auth.test/token",service="reg"'}
    )
    scopes = ["repository:a:pull"]
    assert a.on_unauthorized(challenge, scopes) is True
    req = httpx.Request("GET", "https://r.test/v2/a/manifests/1")
    a.apply(req, scopes)
    assert req.headers["authorization"] == "Bearer T[repository:a:pull]"
    assert tokens[0].url.params["service"] == "reg"
    a.apply(httpx.Request("GET", "https://r.test/x"), scopes)
    assert len(tokens) == 1  # cached per scope
    a.apply(httpx.Request("GET", "https://r.test/x"), ["repository:b:pull,push"])
    assert len(tokens) == 2
    # the registry asks for more than we had: the scope from its challenge is added
    more = httpx.Response(401, headers={"www-authenticate":
                                        'Bearer realm="https://auth.test/token",service="reg",scope="repository:c:pull"'})  # fmt: skip
    scopes2 = ["repository:a:pull"]
    assert a.on_unauthorized(more, scopes2) is True
    assert scopes2 == ["repository:a:pull", "repository:c:pull"]
    # the same challenge again for a token we sent: retrying would loop
    sent = httpx.Request("GET", "https://r.test/v2/a/manifests/1", headers={"authorization": "Bearer T"})
    refused = httpx.Response(401, headers=challenge.headers, request=sent)
    assert a.on_unauthorized(refused, ["repository:a:pull"]) is False
    # ... but a request that went out before the scheme was known (a parallel one) is retried
    assert a.on_unauthorized(challenge, ["repository:a:pull"]) is True


def test_token_expiry() -> None:
    tokens: list[httpx.Request] = []
    a = Authorizer("r.test", ("u", "p"), _token_server(tokens, expires=1))
    a.on_unauthorized(
        httpx.Response(401, headers={"www-authenticate": 'Bearer realm="https://auth.test/t"'}), []
    )
    a.token(["s"])
    a._tokens[("s",)] = (a._tokens[("s",)][0], 0.0)  # expired
    a.token(["s"])
    assert len(tokens) == 2


def test_token_refused() -> None:
    a = Authorizer("r.test", ("u", "wrong"), _token_server([]))
    a.on_unauthorized(
        httpx.Response(401, headers={"www-authenticate": 'Bearer realm="https://auth.test/t"'}), []
    )
    with pytest.raises(PermissionDenied, match="token server"):
        a.token(["s"])


def test_basic_challenge() -> None:
    a = Authorizer("r.test", None, lambda r: httpx.Response(500))
    with pytest.raises(PermissionDenied, match=r"kobako login r\.test"):
        a.on_unauthorized(httpx.Response(401, headers={"www-authenticate": 'Basic realm="x"'}), [])
    b = Authorizer("r.test", ("u", "p"), lambda r: httpx.Response(500))
    assert b.on_unauthorized(httpx.Response(401, headers={"www-authenticate": 'Basic realm="x"'}), []) is True
    req = httpx.Request("GET", "https://r.test/v2/")
    b.apply(req, [])
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    # a request sent before the scheme was known (a parallel one) is retried, not taken as a wrong password
    unsent = httpx.Response(
        401, headers={"www-authenticate": 'Basic realm="x"'}, request=httpx.Request("GET", "https://r.test/")
    )
    assert b.on_unauthorized(unsent, []) is True
    with pytest.raises(PermissionDenied, match="invalid username or password"):
        b.on_unauthorized(
            httpx.Response(401, headers={"www-authenticate": 'Basic realm="x"'}, request=req), []
        )

"""/_ping, /version, /info, version negotiation, routing, keep-alive and the socket itself."""

from __future__ import annotations

import json
import os
import stat

import pytest

pytestmark = pytest.mark.root


def test_ping_get_and_head_carry_the_api_version(api) -> None:
    status, headers, body = api.request("GET", "/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["Api-Version"] == "1.45"
    assert headers["Ostype"] == "linux"
    status, headers, body = api.request("HEAD", "/_ping")
    assert status == 200 and body == b""
    assert headers["Api-Version"] == "1.45"


def test_version_and_info(api) -> None:
    version = api.json("GET", "/version")
    assert version["ApiVersion"] == "1.45" and version["MinAPIVersion"] == "1.24"
    assert version["Os"] == "linux"
    info = api.json("GET", "/v1.41/info")
    assert info["Images"] == 1
    assert info["OSType"] == "linux" and info["NCPU"] >= 1
    assert info["DockerRootDir"] == str(api.root)


@pytest.mark.parametrize("version", ["1.24", "1.41", "1.45"])
def test_supported_versions_are_accepted(api, version: str) -> None:
    assert api.json("GET", f"/v{version}/version")["ApiVersion"] == "1.45"


@pytest.mark.parametrize(("version", "word"), [("1.12", "too old"), ("1.99", "too new")])
def test_unsupported_versions_are_refused(api, version: str, word: str) -> None:
    status, _h, body = api.request("GET", f"/v{version}/version")
    assert status == 400
    assert word in json.loads(body)["message"]


def test_unknown_route_and_wrong_method(api) -> None:
    status, _h, body = api.request("GET", "/nothing/here")
    assert status == 404 and json.loads(body)["message"] == "page not found"
    status, _h, body = api.request("PUT", "/containers/json")
    assert status == 405 and "message" in json.loads(body)


def test_keep_alive_serves_many_requests_on_one_connection(api) -> None:
    conn = api.conn()
    try:
        for _ in range(5):
            conn.request("GET", "/_ping")
            resp = conn.getresponse()
            assert resp.read() == b"OK"
        conn.request("GET", "/v1.41/containers/json")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read()) == []
    finally:
        conn.close()


def test_socket_is_mode_0660(api) -> None:
    mode = os.stat(api.sock).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660


def test_chunked_request_body_is_accepted(api) -> None:
    conn = api.conn()
    try:
        conn.putrequest("POST", "/volumes/create")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("Content-Type", "application/json")
        conn.endheaders()
        payload = json.dumps({"Name": "chunky"}).encode()
        for part in (payload[:5], payload[5:]):
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        assert resp.status == 201, resp.read()
        assert json.loads(resp.read())["Name"] == "chunky"
    finally:
        conn.close()
    assert api.request("DELETE", "/volumes/chunky")[0] == 204


def test_time_ends_an_idle_service_and_tcp_listens_where_asked(api, tmp_path) -> None:
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    kobako = str(Path(sys.executable).parent / "kobako")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([kobako, "system", "service", "--time", "1", f"tcp://127.0.0.1:{port}"],
                            env=api.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), 1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        conn.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        conn.close()
        assert proc.wait(10) == 0  # idle for a second: it ends by itself
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_addresses_are_refused(api) -> None:
    for address in ("unix://relative.sock", "tcp://127.0.0.1", "http://x", "tcp://127.0.0.1:99999"):
        proc = api.kobako("system", "service", address, check=False)
        assert proc.returncode != 0 and "invalid address" in proc.stderr, (address, proc.stderr)

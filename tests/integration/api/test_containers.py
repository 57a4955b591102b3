"""Container endpoints through raw HTTP: create, start, attach (hijacked), wait, logs, inspect, list, stop,
kill, exec, stats, remove; and one engine shared with the CLI."""

from __future__ import annotations

import json
import socket
import time

import pytest

pytestmark = pytest.mark.root


def create(api, cmd: list[str], name: str = "", **extra: object) -> str:
    body = {"Image": "busybox", "Cmd": cmd, **extra}
    return api.json("POST", f"/v1.45/containers/create?name={name}", body, expect=201)["Id"]


def hijack(api, path: str, stdin: bytes = b"") -> tuple[bytes, bytes]:
    """POST ``path`` with Upgrade headers; (response head, everything after it until EOF)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(30)
    sock.connect(api.sock)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                 "Content-Length: 0\r\n\r\n".encode())  # fmt: skip
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest, sock  # type: ignore[return-value]


def read_all(sock: socket.socket) -> bytes:
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def demux(data: bytes) -> dict[int, bytes]:
    streams: dict[int, bytes] = {1: b"", 2: b""}
    while data:
        kind, size = data[0], int.from_bytes(data[4:8], "big")
        streams[kind] = streams.get(kind, b"") + data[8 : 8 + size]
        data = data[8 + size :]
    return streams


def wait_status(api, cid: str, status: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = api.json("GET", f"/containers/{cid}/json")
        if data["State"]["Status"] == status or time.monotonic() > deadline:
            return data
        time.sleep(0.05)


def test_run_flow_attach_wait_start_exit_code(clean) -> None:
    api = clean
    cid = create(api, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    head, rest, sock = hijack(api, f"/v1.45/containers/{cid}/attach?stream=1&stdout=1&stderr=1")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    assert b"application/vnd.docker.multiplexed-stream" in head
    wait = api.conn()
    wait.request("POST", f"/v1.45/containers/{cid}/wait?condition=next-exit")
    response = wait.getresponse()  # headers arrive before the start: the wait is registered
    assert response.status == 200
    assert api.request("POST", f"/v1.45/containers/{cid}/start")[0] == 204
    output = demux(rest + read_all(sock))
    sock.close()
    assert output[1] == b"out\n" and output[2] == b"err\n"
    assert json.loads(response.read()) == {"StatusCode": 3, "Error": None}
    wait.close()
    state = api.json("GET", f"/containers/{cid}/json")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 3


def test_auto_remove_and_wait_removed(clean) -> None:
    api = clean
    cid = create(api, ["sh", "-c", "exit 4"], HostConfig={"AutoRemove": True})
    wait = api.conn()
    wait.request("POST", f"/containers/{cid}/wait?condition=removed")
    response = wait.getresponse()
    assert api.request("POST", f"/containers/{cid}/start")[0] == 204
    assert json.loads(response.read())["StatusCode"] == 4
    wait.close()
    assert api.request("GET", f"/containers/{cid}/json")[0] == 404


def test_detached_lifecycle_list_logs_stop_remove(clean) -> None:
    api = clean
    cid = create(api, ["sh", "-c", "echo ready; trap 'exit 0' TERM; sleep 100 & wait"], name="det")
    assert api.request("POST", f"/containers/{cid}/start")[0] == 204
    assert api.request("POST", f"/containers/{cid}/start")[0] == 304  # already running
    rows = api.json("GET", "/containers/json")
    assert [r["Names"] for r in rows] == [["/det"]] and rows[0]["State"] == "running"
    deadline = time.monotonic() + 10
    while (
        b"ready" not in api.request("GET", f"/containers/{cid}/logs?stdout=1")[2]
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    status, _headers, body = api.request("GET", "/containers/det/logs?stdout=1&stderr=1")
    assert status == 200 and demux(body)[1] == b"ready\n"
    assert api.request("POST", "/containers/det/stop?t=5")[0] == 204
    assert api.request("POST", "/containers/det/stop")[0] == 304
    assert api.json("GET", f"/containers/{cid}/json")["State"]["ExitCode"] == 0
    assert api.json("GET", "/containers/json") == []
    assert len(api.json("GET", "/containers/json?all=1")) == 1
    assert api.request("DELETE", "/containers/det")[0] == 204
    assert api.request("GET", "/containers/det/json")[0] == 404


def test_kill_remove_running_needs_force(clean) -> None:
    api = clean
    cid = create(api, ["sleep", "100"])
    api.request("POST", f"/containers/{cid}/start")
    status, _h, body = api.request("DELETE", f"/containers/{cid}")
    assert status == 409 and "force" in json.loads(body)["message"]
    assert api.request("POST", f"/containers/{cid}/kill?signal=KILL")[0] == 204
    assert wait_status(api, cid, "exited")["State"]["ExitCode"] == 137
    assert api.request("POST", f"/containers/{cid}/kill")[0] == 409  # not running
    assert api.request("DELETE", f"/containers/{cid}?force=1")[0] == 204


def test_exec_create_start_inspect(clean) -> None:
    api = clean
    cid = create(api, ["sleep", "100"])
    api.request("POST", f"/containers/{cid}/start")
    exec_id = api.json("POST", f"/containers/{cid}/exec", {"Cmd": ["sh", "-c", "echo hi; echo no >&2; exit 6"],
                       "AttachStdout": True, "AttachStderr": True}, expect=201)["Id"]  # fmt: skip
    head, rest, sock = hijack(api, f"/exec/{exec_id}/start")
    assert head.startswith(b"HTTP/1.1 101")
    output = demux(rest + read_all(sock))
    sock.close()
    assert output == {1: b"hi\n", 2: b"no\n"}
    info = api.json("GET", f"/exec/{exec_id}/json")
    assert info["ExitCode"] == 6 and info["Running"] is False
    assert api.request("POST", f"/exec/{exec_id}/start", {})[0] == 409  # once only
    assert api.request("GET", "/exec/" + "0" * 64 + "/json")[0] == 404
    api.request("DELETE", f"/containers/{cid}?force=1")
    status, _h, _b = api.request("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
    assert status == 404


def test_exec_in_stopped_container_is_409(clean) -> None:
    api = clean
    cid = create(api, ["true"])
    status, _h, body = api.request("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
    assert status == 409 and "not running" in json.loads(body)["message"]


def test_stats_one_shot_and_resize(clean) -> None:
    api = clean
    cid = create(api, ["sleep", "100"], Tty=True)
    api.request("POST", f"/containers/{cid}/start")
    stats = api.json("GET", f"/containers/{cid}/stats?stream=0&one-shot=1")
    assert stats["id"] == cid and stats["pids_stats"]["current"] >= 1
    assert stats["memory_stats"]["usage"] > 0
    assert api.request("POST", f"/containers/{cid}/resize?h=40&w=120")[0] == 200
    assert api.request("POST", f"/containers/{cid}/resize?h=0&w=120")[0] == 400


def test_api_and_cli_share_one_engine(clean) -> None:
    api = clean
    cid = create(api, ["sleep", "100"], name="from-api")
    api.request("POST", f"/containers/{cid}/start")
    ps = api.kobako("ps", "--format", "{{.Names}} {{.State}}").stdout
    assert "from-api running" in ps
    api.kobako("stop", "-t", "1", "from-api")
    assert api.json("GET", "/containers/from-api/json")["State"]["Running"] is False
    cli_id = api.kobako("run", "-d", "--name", "from-cli", "busybox", "sleep", "100").stdout.strip()
    assert api.json("GET", "/containers/from-cli/json")["Id"] == cli_id
    assert api.request("POST", "/containers/from-cli/kill")[0] == 204
    assert wait_status(api, cli_id, "exited")["State"]["ExitCode"] == 137
    wait = api.json("POST", "/containers/from-cli/wait")
    assert wait["StatusCode"] == 137


def test_not_found_and_conflict(clean) -> None:
    api = clean
    status, _h, body = api.request("POST", "/containers/create", {"Image": "nosuchimage"})
    assert status == 404 and "no such image" in json.loads(body)["message"].lower()
    create(api, ["true"], name="taken")
    status, _h, body = api.request("POST", "/containers/create?name=taken", {"Image": "busybox"})
    assert status == 409 and "already in use" in json.loads(body)["message"]
    status, _h, body = api.request(
        "POST", "/containers/create", {"Image": "busybox", "Cmd": ["/nonexistent"]}
    )
    cid = json.loads(body)["Id"]
    status, _h, body = api.request("POST", f"/containers/{cid}/start")
    assert status == 400 and "no such file" in json.loads(body)["message"]

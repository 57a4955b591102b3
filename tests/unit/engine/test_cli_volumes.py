"""`kobako volume ...` through the real dispatcher, with KOBAKO_ROOT in a temporary directory."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from kobako.cli.main import main


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KOBAKO_ROOT", str(tmp_path))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["volume", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_ls_inspect_rm(capsys: pytest.CaptureFixture[str], state: Path) -> None:
    assert run(capsys, "create", "--label", "a=b", "data") == (0, "data\n", "")
    code, out, _ = run(capsys, "create")
    anon = out.strip()
    assert code == 0 and len(anon) == 64
    in_order = sorted([anon, "data"])  # by name: the random name sorts before or after "data"
    code, out, _ = run(capsys, "ls")
    assert out.splitlines() == ["DRIVER    VOLUME NAME", *(f"local     {n}" for n in in_order)]
    assert run(capsys, "ls", "-q")[1].split() == in_order
    rows = [json.loads(line) for line in run(capsys, "ls", "--format", "json")[1].splitlines()]
    assert rows[in_order.index("data")] == {"Driver": "local", "Labels": "a=b",
                                            "Mountpoint": str(state / "volumes/data/_data"),
                                            "Name": "data", "Scope": "local"}  # fmt: skip
    code, out, err = run(capsys, "inspect", "data", "missing")
    info = json.loads(out)
    assert code == 1 and "no such volume: missing" in err
    assert [i["Name"] for i in info] == ["data"] and info[0]["Labels"] == {"a": "b"}
    assert run(capsys, "rm", "data", anon) == (0, f"data\n{anon}\n", "")
    code, _, err = run(capsys, "rm", "data")
    assert code == 1 and "no such volume" in err
    assert run(capsys, "rm", "-f", "data") == (0, "data\n", "")
    assert run(capsys, "ls", "-q") == (0, "", "")


def test_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "create", "bad/name")
    assert code == 125 and "invalid characters" in err
    code, _, err = run(capsys, "create", "-d", "nfs", "x1")
    assert code == 125 and "not supported" in err
    code, _, err = run(capsys, "inspect")
    assert code == 125 and "requires at least 1 argument" in err
    code, _, err = run(capsys, "ls", "--format", "{{.Name}}")
    assert code == 125 and "unsupported --format" in err


def test_in_use_volume_is_refused(capsys: pytest.CaptureFixture[str], state: Path) -> None:
    run(capsys, "create", "busy")
    record = state / "containers" / "abc"
    record.mkdir(parents=True)
    (record / "config.json").write_text(json.dumps({"id": "abc", "mounts": [{"Name": "busy"}]}))
    code, _, err = run(capsys, "rm", "-f", "busy")
    assert code == 1 and "volume is in use - [abc]" in err
    code, out, _ = run(capsys, "prune", "-f")
    assert code == 0 and "busy" not in out


def test_prune(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, state: Path) -> None:
    run(capsys, "create", "v1")
    with open(state / "volumes/v1/_data/file", "wb") as f:
        f.write(os.urandom(8192))
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out, _ = run(capsys, "prune")
    assert code == 0 and "Are you sure" in out and (state / "volumes/v1").exists()
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, _ = run(capsys, "prune")
    assert code == 0 and "Deleted Volumes:\nv1\n" in out and "Total reclaimed space: 8.192kB" in out
    assert not (state / "volumes/v1").exists()
    assert run(capsys, "prune", "-f")[1] == "Total reclaimed space: 0B\n"

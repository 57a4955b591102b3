"""Progress output (plain, rich, quiet), platform strings, and the registry verbs' argument handling."""

from __future__ import annotations

import io

import pytest

from kobako.errors import InvalidArgument
from kobako.registry.client.progress import PlainProgress, Progress, RichProgress, for_terminal
from kobako.registry.client.resolver import parse_platform

D = "sha256:" + "ab" * 32


def test_plain_progress_lines() -> None:
    out = io.StringIO()
    p = PlainProgress(out)
    p.message("1: Pulling from x")
    p.start(D, 100, "Downloading")
    p.advance(D, 50)  # no line per chunk
    p.status(D, "Pull complete")
    assert out.getvalue() == "1: Pulling from x\nabababababab: Downloading\nabababababab: Pull complete\n"


def test_rich_progress_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    p = for_terminal(out=out)
    assert isinstance(p, RichProgress)
    p.start(D, 1000, "Downloading")
    p.advance(D, 400)
    p.status("sha256:" + "cd" * 32, "Already exists")
    p.status(D, "Pull complete")
    p.message("Digest: sha256:00")
    p.close()
    text = out.getvalue()
    assert "abababababab" in text and "Pull complete" in text and "Digest: sha256:00" in text


def test_quiet_and_plain_choice() -> None:
    assert type(for_terminal(quiet=True)) is Progress
    assert isinstance(for_terminal(out=io.StringIO()), PlainProgress)


def test_parse_platform() -> None:
    assert parse_platform("linux/arm64/v8") == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert parse_platform("linux/amd64") == {"os": "linux", "architecture": "amd64"}
    for bad in ("linux", "linux//v8", "a/b/c/d", ""):
        with pytest.raises(InvalidArgument):
            parse_platform(bad)


def test_verbs_validate_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from kobako.cli import registry as verbs

    monkeypatch.setenv("KOBAKO_ROOT", str(tmp_path))
    with pytest.raises(InvalidArgument, match="exactly 1 argument"):
        verbs.cmd_pull([])
    with pytest.raises(InvalidArgument, match="1 or 2 arguments"):
        verbs.cmd_push(["a", "b", "c"])
    with pytest.raises(InvalidArgument, match="mutually exclusive"):
        verbs.cmd_login(["-u", "x", "-p", "y", "--password-stdin", "r.test"])
    with pytest.raises(InvalidArgument, match="go together"):
        verbs.cmd_serve(["--tls-cert", "x"])
    with pytest.raises(InvalidArgument, match="only makes sense"):
        verbs.cmd_serve(["--anonymous-read"])
    with pytest.raises(InvalidArgument, match="--grace"):
        verbs.cmd_gc(["--root", str(tmp_path), "--grace", "soon"])
    from kobako.errors import NotFound

    with pytest.raises(NotFound, match="not logged in"):
        verbs.cmd_logout(["r.test"])
    assert verbs.cmd_gc(["--root", str(tmp_path / "reg-empty-missing"), "--help"]) == 0
    assert "usage: kobako registry gc" in capsys.readouterr().out

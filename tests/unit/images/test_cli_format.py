"""Docker-like presentation used by the image and system verbs: sizes, durations, tables, templates."""

from __future__ import annotations

import pytest

from kobako.cli.system import human_duration, human_size, print_table, render
from kobako.errors import InvalidArgument


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (2_140_160, "2.14MB"), (4_260_000_000, "4.26GB"),
     (999_700, "1MB"), (123_456_789_012_345, "123TB")],
)  # fmt: skip
def test_human_size(n: int, text: str) -> None:
    assert human_size(n) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
     (150, "2 minutes"), (3500, "58 minutes"), (4000, "About an hour"), (7200, "2 hours"), (3 * 86400, "3 days"),
     (20 * 86400, "2 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years")],
)  # fmt: skip
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(
        ["REPOSITORY", "TAG", "SIZE"], [["busybox", "latest", "1MB"], ["a-much-longer-name", "1", "2MB"]]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "REPOSITORY           TAG       SIZE"
    assert lines[1] == "busybox              latest    1MB"


def test_render() -> None:
    row = {"Repository": "busybox", "Tag": "latest", "Config": {"Cmd": ["sh"]}, "List": ["a", "b"]}
    assert render("{{.Repository}}:{{ .Tag }}\\t{{json .Config}}", row) == 'busybox:latest\t{"Cmd": ["sh"]}'
    assert render("{{.Config.Cmd}} {{.List}}", row) == "[sh] [a b]"
    with pytest.raises(InvalidArgument, match="no field"):
        render("{{.Nope}}", row)
    with pytest.raises(InvalidArgument, match="unsupported"):
        render("{{range .List}}", row)

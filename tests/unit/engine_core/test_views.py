"""ps/inspect formatting: STATUS wording, --format templates."""

from __future__ import annotations

from kobako.cli.containers_view import render, status_text
from kobako.engine import clock
from kobako.engine.tasks import TaskState

NOW = 1_800_000_000.0


def _at(seconds_ago: float) -> str:
    return clock.rfc3339(int((NOW - seconds_ago) * 1e9))


def test_status_text() -> None:
    assert status_text(TaskState(status="running", started_at=_at(3)), NOW) == "Up 3 seconds"
    assert status_text(TaskState(status="paused", started_at=_at(3)), NOW) == "Up 3 seconds (Paused)"
    healthy = TaskState(status="running", started_at=_at(90), health={"Status": "healthy"})
    assert status_text(healthy, NOW) == "Up About a minute (healthy)"
    starting = TaskState(status="running", started_at=_at(1), health={"Status": "starting"})
    assert status_text(starting, NOW) == "Up 1 second (health: starting)"
    assert (
        status_text(TaskState(status="exited", exit_code=137, finished_at=_at(2)), NOW)
        == "Exited (137) 2 seconds ago"
    )
    assert (
        status_text(TaskState(status="restarting", exit_code=1, finished_at=_at(5)), NOW)
        == "Restarting (1) 5 seconds ago"
    )
    assert status_text(TaskState(status="created"), NOW) == "Created"


def test_render_templates() -> None:
    data = {
        "Name": "/web",
        "State": {"Status": "running", "Running": True, "ExitCode": 0},
        "Args": ["a", "b"],
    }
    assert render("{{.Name}} {{.State.Status}}", data) == "/web running"
    assert render("{{.State.Running}}", data) == "true"
    assert render("{{json .Args}}", data) == '["a", "b"]'
    assert render("{{.Missing.Field}}|", data) == "|"
    assert render("a\\tb", data) == "a\tb"

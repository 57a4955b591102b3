"""Clock formatting, restart policies and back-off, health status transitions."""

from __future__ import annotations

import calendar
import time

import pytest

from kobako.engine import clock, health, restart
from kobako.errors import InvalidArgument


def test_rfc3339_round_trip() -> None:
    ns = 1_780_000_000_123_456_789
    text = clock.rfc3339(ns)
    assert text == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".123456789Z"
    assert abs(clock.parse(text) - ns / 1e9) < 1e-6
    assert clock.parse("2024-02-29T12:00:00Z") == calendar.timegm((2024, 2, 29, 12, 0, 0))
    assert clock.parse(clock.ZERO) == 0.0


@pytest.mark.parametrize(("seconds", "text"), [(0.2, "Less than a second"), (1, "1 second"), (3, "3 seconds"),
                                               (61, "About a minute"), (300, "5 minutes"), (3600, "About an hour"),
                                               (7200, "2 hours"), (86400 * 3, "3 days")])  # fmt: skip
def test_human_durations(seconds: float, text: str) -> None:
    assert clock.human(seconds) == text


def test_policy_parsing() -> None:
    assert restart.parse("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert restart.parse("always") == {"Name": "always", "MaximumRetryCount": 0}
    for bad in ("sometimes", "always:3", "on-failure:x"):
        with pytest.raises(InvalidArgument):
            restart.parse(bad)

    class Opt:
        name, max_retries = "on-failure", 2

    assert restart.from_options(Opt()) == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_should_restart() -> None:
    on_failure = restart.parse("on-failure:2")
    assert restart.should_restart(on_failure, 1, 0, False)
    assert restart.should_restart(on_failure, 1, 1, False)
    assert not restart.should_restart(on_failure, 1, 2, False)
    assert not restart.should_restart(on_failure, 0, 0, False)
    assert restart.should_restart(restart.parse("always"), 0, 100, False)
    assert not restart.should_restart(restart.parse("always"), 0, 0, True)  # stopped by the user
    assert not restart.should_restart(restart.parse("no"), 1, 0, False)


def test_backoff_doubles_caps_and_resets() -> None:
    b = restart.Backoff(10.0)
    delays = [b.next_delay(1) for _ in range(8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    assert b.next_delay(600) == 10  # up for 10 minutes: start over


def test_backoff_scale_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOBAKO_RESTART_BACKOFF", "0.2")
    b = restart.Backoff()
    assert [b.next_delay(0) for _ in range(3)] == [0.2, 0.4, 0.8]


def test_health_config_from_image_and_options() -> None:
    image = {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert health.from_image(image) == {"Test": ["CMD-SHELL", "true"], "Interval": 5.0, "Timeout": 30.0,
                                        "StartPeriod": 0.0, "Retries": 2}  # fmt: skip
    assert health.from_image({"Test": ["NONE"]}) is None

    class Opt:
        test, interval, timeout, retries, start_period = ["CMD", "check"], 0.5, 0.0, 0, 0.0

    cfg = health.from_options(Opt(), image)
    assert cfg is not None
    assert (cfg["Test"], cfg["Interval"], cfg["Retries"]) == (["CMD", "check"], 0.5, 2)
    assert health.from_options(Opt(), image, disabled=True) is None
    assert health.command(["CMD-SHELL", "a && b"]) == ["/bin/sh", "-c", "a && b"]
    assert health.command(["CMD", "x", "y"]) == ["x", "y"]


def test_health_transitions() -> None:
    state = health.HealthState({"Retries": 2})
    state.record("t", 1, "no", in_start_period=True)
    assert (state.status, state.failing_streak) == ("starting", 0)  # the start period forgives
    state.record("t", 0, "ok", in_start_period=False)
    assert (state.status, state.failing_streak) == ("healthy", 0)
    state.record("t", 1, "no", in_start_period=False)
    assert (state.status, state.failing_streak) == ("healthy", 1)
    state.record("t", 1, "no", in_start_period=False)
    assert (state.status, state.failing_streak) == ("unhealthy", 2)
    for _ in range(5):
        state.record("t", 0, "ok", in_start_period=False)
    assert state.status == "healthy" and len(state.log) == health.KEEP
    assert set(state.to_dict()) == {"Status", "FailingStreak", "Log"}

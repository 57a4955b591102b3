"""Docker's size and duration notations."""

from __future__ import annotations

import pytest

from kobako.engine.sizes import parse_bytes, parse_cpuset, parse_duration
from kobako.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "value"),
    [("100", 100), ("100b", 100), ("1k", 1024), ("1K", 1024), ("64m", 64 << 20), ("64mb", 64 << 20),
     ("64MiB", 64 << 20), ("64 m", 64 << 20), ("1.5g", 3 << 29), ("2t", 2 << 40), ("1p", 1 << 50)],
)  # fmt: skip
def test_bytes(text: str, value: int) -> None:
    assert parse_bytes(text, "--memory") == value


@pytest.mark.parametrize("text", ["", "m", "1x", "1.2.3m", "-1m", "1mbb", "ten"])
def test_bad_bytes(text: str) -> None:
    with pytest.raises(InvalidArgument, match="--memory"):
        parse_bytes(text, "--memory")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("1.5h", 5400.0), ("1h2m3s", 3723.0),
     ("10us", 1e-5), ("10µs", 1e-5), ("100ns", 1e-7), ("+5s", 5.0)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--health-interval") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "1m30", "-5s", "1..5s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidArgument, match="--health-interval"):
        parse_duration(text, "--health-interval")


def test_cpuset() -> None:
    assert parse_cpuset("0-2,5", "--cpuset-cpus") == [0, 1, 2, 5]
    with pytest.raises(InvalidArgument):
        parse_cpuset("0-", "--cpuset-cpus")

"""Time for records, logs and `ps`: RFC 3339 with nanoseconds, parsed back without ``datetime``/``re``,
and docker's human durations ("Up 3 seconds", "2 minutes ago")."""

from __future__ import annotations

import time

ZERO = "0001-01-01T00:00:00Z"  # docker's "never" (e.g. FinishedAt of a running container)


def rfc3339(t_ns: int | None = None) -> str:
    t_ns = time.time_ns() if t_ns is None else t_ns
    secs, frac = divmod(t_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 UTC time we wrote ("...Z"); 0.0 for ZERO or garbage."""
    if not text or text.startswith("0001-"):
        return 0.0
    try:
        year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
        hour, minute, sec = int(text[11:13]), int(text[14:16]), int(text[17:19])
        frac = text[19:].rstrip("Z")
        fraction = float("0" + frac) if frac.startswith(".") else 0.0
    except ValueError:
        return 0.0
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec + fraction


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian calendar.
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def human(seconds: float) -> str:
    """Docker's units.HumanDuration wording."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def ago(text: str, now: float | None = None) -> str:
    t = parse(text)
    return f"{human((now or time.time()) - t)} ago" if t else ""

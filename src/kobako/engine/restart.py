"""Restart policies (no, on-failure[:N], always, unless-stopped) and the back-off between restarts.

The delay starts at 10 s and doubles up to 5 min; a run that stayed up 10 min resets it. Tests shrink the
whole scale with ``KOBAKO_RESTART_BACKOFF=0.2`` (the first delay in seconds; the cap and the reset keep
their ratio to it: 30x and 60x).
"""

from __future__ import annotations

import os

from kobako.errors import InvalidArgument

POLICIES = ("no", "on-failure", "always", "unless-stopped")
DEFAULT_BASE = 10.0


def parse(text: str) -> dict:
    """``on-failure:3`` → {"Name": "on-failure", "MaximumRetryCount": 3} (docker's HostConfig shape)."""
    name, _, count = (text or "no").partition(":")
    if name not in POLICIES:
        raise InvalidArgument(
            f"invalid restart policy {text!r}: use no, on-failure[:N], always or unless-stopped"
        )
    if count and (name != "on-failure" or not count.isdigit()):
        raise InvalidArgument(f"invalid restart policy {text!r}: only on-failure takes a retry count")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def from_options(policy: object) -> dict:
    """Normalise whatever run options carry (a string, a dict or an object with name/max_retries)."""
    if policy is None:
        return parse("no")
    if isinstance(policy, str):
        return parse(policy)
    if isinstance(policy, dict):
        return parse(str(policy.get("Name") or policy.get("name") or "no")) | {
            "MaximumRetryCount": int(policy.get("MaximumRetryCount") or policy.get("max_retries") or 0)
        }
    name = str(getattr(policy, "name", "no") or "no")
    retries = getattr(policy, "max_retries", None)
    if retries is None:
        retries = getattr(policy, "maximum_retry_count", 0)
    return parse(name) | {"MaximumRetryCount": int(retries or 0)}


def should_restart(policy: dict, exit_code: int, restart_count: int, stopped_by_user: bool) -> bool:
    name = policy.get("Name", "no")
    if stopped_by_user or name == "no":
        return False
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return True  # always, unless-stopped


def base_delay() -> float:
    try:
        return max(float(os.environ.get("KOBAKO_RESTART_BACKOFF", "")), 0.0)
    except ValueError:
        return DEFAULT_BASE


class Backoff:
    """10 s, 20 s, 40 s ... capped at 5 min; reset once a run lasted 10 min (all scaled by the base)."""

    def __init__(self, base: float | None = None) -> None:
        self.base = base_delay() if base is None else base
        self.current = self.base

    def next_delay(self, uptime: float) -> float:
        if uptime >= self.base * 60:
            self.current = self.base
        delay = self.current
        self.current = min(self.current * 2, self.base * 30)
        return delay

"""Docker's ``filters`` query parameter: JSON ``{"key": ["v", ...]}`` (or the older ``{"key": {"v": true}}``)."""

from __future__ import annotations

import json

from kobako.api.http import HTTPError


def parse_filters(text: str, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HTTPError(400, f"invalid filters: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HTTPError(400, "invalid filters: want a JSON object of lists")
    out: dict[str, list[str]] = {}
    for key, value in data.items():
        if key not in allowed:
            raise HTTPError(400, f"invalid filter '{key}'")
        if isinstance(value, dict):
            values = [k for k, on in value.items() if on]
        elif isinstance(value, list):
            values = value
        elif isinstance(value, str):
            values = [value]
        else:
            raise HTTPError(400, f"invalid filter '{key}': want a list of strings")
        if not all(isinstance(v, str) for v in values):
            raise HTTPError(400, f"invalid filter '{key}': want a list of strings")
        out[key] = list(values)
    return out


def label_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True

"""Sizes and durations as docker's flags write them: ``64m``, ``1.5g``, ``1m30s``, ``500ms``.

Hand-written scanners rather than regular expressions: ``re`` costs ~10 ms of ``kobako run``'s start-up.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
# Go's time.ParseDuration units, longest first so "ms" is not read as "m" + "s".
_DURATION_UNITS = (("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("μs", 1e-6), ("ms", 1e-3), ("s", 1.0),
                   ("m", 60.0), ("h", 3600.0))  # fmt: skip


def _split_number(text: str) -> tuple[str, str]:
    """``"1.5gb"`` → ``("1.5", "gb")``: the leading decimal number and what follows it."""
    end = 0
    seen_dot = False
    while end < len(text) and (text[end].isdigit() or (text[end] == "." and not seen_dot)):
        seen_dot = seen_dot or text[end] == "."
        end += 1
    return text[:end], text[end:]


def parse_bytes(value: str, flag: str) -> int:
    """Binary units as docker's RAMInBytes: ``64m``, ``64MB``, ``64 MiB``, ``1.5g``, ``100`` (bytes)."""
    text = value.strip()
    number, unit = _split_number(text)
    unit = unit.strip().lower()
    if unit.endswith("ib"):
        unit = unit[:-2]
    elif unit.endswith("b") and len(unit) == 2:
        unit = unit[:-1]
    if not number or number == "." or unit not in _UNITS:
        raise InvalidArgument(f"invalid value {value!r} for {flag}: expected a size like 64m, 512k or 1.5g")
    return int(float(number) * _UNITS[unit])


def parse_duration(value: str, flag: str) -> float:
    """Go durations (``1m30s``, ``500ms``, ``1.5h``, ``0``) → seconds; negative ones are refused."""
    text = value.strip()
    if text in ("0", "+0"):
        return 0.0
    if text.startswith("-"):
        raise InvalidArgument(f"{flag} cannot be negative: {value!r}")
    rest = text.removeprefix("+")
    if not rest:
        raise InvalidArgument(f"invalid duration {value!r} for {flag}")
    total = 0.0
    while rest:
        number, rest = _split_number(rest)
        if not number or number == ".":
            raise InvalidArgument(f"invalid duration {value!r} for {flag}: expected e.g. 30s, 1m30s, 500ms")
        for unit, scale in _DURATION_UNITS:
            if rest.startswith(unit):
                total += float(number) * scale
                rest = rest[len(unit) :]
                break
        else:
            raise InvalidArgument(f"invalid duration {value!r} for {flag}: missing or unknown unit")
    return total


def parse_int(value: str, flag: str, minimum: int | None = None) -> int:
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit():
        raise InvalidArgument(f"invalid value {value!r} for {flag}: expected an integer")
    number = int(text)
    if minimum is not None and number < minimum:
        raise InvalidArgument(f"invalid value {value!r} for {flag}: must be at least {minimum}")
    return number


def parse_float(value: str, flag: str) -> float:
    number, rest = _split_number(value.strip())
    if not number or number == "." or rest:
        raise InvalidArgument(f"invalid value {value!r} for {flag}: expected a decimal number")
    return float(number)


def parse_cpuset(value: str, flag: str) -> list[int]:
    """``0-3,5`` → [0, 1, 2, 3, 5]; ranges must go upwards."""
    cpus: list[int] = []
    for part in value.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise InvalidArgument(f"invalid value {value!r} for {flag}: expected a list like 0-3,5")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            raise InvalidArgument(f"invalid value {value!r} for {flag}: range {part} goes downwards")
        cpus.extend(range(first, last + 1))
    return cpus

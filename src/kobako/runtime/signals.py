"""Signal names and numbers for Linux x86_64/arm64 (the ``signal`` module costs an ``enum`` import)."""

from __future__ import annotations

import os

from kobako.errors import InvalidArgument

NUMBERS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16,
    "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24,
    "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}  # fmt: skip
SIGRTMIN = 34
SIGRTMAX = 64
SIGKILL = 9
SIGTERM = 15


def parse(value: str) -> int:
    """Accept 9, KILL, SIGKILL, kill, RTMIN+3, SIGRTMAX-1; anything else is a clear error."""
    text = value.strip()
    if text.isdigit():
        number = int(text)
        if 1 <= number <= SIGRTMAX:
            return number
        raise InvalidArgument(f"invalid signal {value!r}: out of range 1..{SIGRTMAX}")
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name in NUMBERS:
        return NUMBERS[name]
    for base, number in (("RTMIN", SIGRTMIN), ("RTMAX", SIGRTMAX)):
        if name == base:
            return number
        if name.startswith(base) and name[len(base)] in "+-" and name[len(base) + 1 :].isdigit():
            offset = int(name[len(base) + 1 :])
            result = number + offset if name[len(base)] == "+" else number - offset
            if SIGRTMIN <= result <= SIGRTMAX:
                return result
    raise InvalidArgument(f"invalid signal {value!r}")


FORWARDED = (1, 2, 3, 10, 12, 15, 28)  # HUP INT QUIT USR1 USR2 TERM WINCH


def forward_to(pid: int, signums: tuple[int, ...] = FORWARDED) -> None:
    """Relay these signals, when they reach us, to ``pid`` (a foreground container, or --init's child)."""
    import _signal  # the builtin behind `signal`, without its enum import

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in signums:
        _signal.signal(signum, forward)

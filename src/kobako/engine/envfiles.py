"""``-e``/``--env-file`` and ``-l``/``--label-file`` entries, read as docker reads them.

A file holds one ``KEY=VALUE`` per line; blank lines and ``#`` comments are skipped; values are taken
verbatim (no quote processing). A bare ``KEY`` (in a file or after ``-e``) takes the value from the
environment of ``kobako`` itself and is dropped when that has no such variable.
"""

from __future__ import annotations

import os

from kobako.errors import InvalidArgument

_MAX_FILE = 16 << 20


def env_entry(item: str, flag: str = "--env") -> str | None:
    """``K=V`` as is; ``K`` → ``K=<host value>`` or None when the host has no K."""
    name, eq, _ = item.partition("=")
    if not name:
        raise InvalidArgument(f"invalid argument {item!r} for {flag}: no variable name")
    if any(c.isspace() for c in name):
        raise InvalidArgument(f"invalid argument {item!r} for {flag}: variable {name!r} contains whitespaces")
    if eq:
        return item
    value = os.environ.get(name)
    return None if value is None else f"{name}={value}"


def read_lines(path: str, flag: str) -> list[str]:
    """The meaningful lines of an env or label file."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE + 1)
    except OSError as exc:
        raise InvalidArgument(f"{flag} {path}: {exc.strerror or exc}") from exc
    if len(data) > _MAX_FILE:
        raise InvalidArgument(f"{flag} {path}: larger than {_MAX_FILE >> 20} MiB")
    out = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode().lstrip().rstrip("\r")
        except UnicodeDecodeError:
            raise InvalidArgument(f"{flag} {path} contains invalid UTF-8 bytes at line {number}") from None
        if line and not line.startswith("#"):
            out.append(line)
    return out


def env_from_file(path: str) -> list[str]:
    entries = []
    for line in read_lines(path, "--env-file"):
        entry = env_entry(line, f"--env-file {path}")
        if entry is not None:
            entries.append(entry)
    return entries


def label_pair(item: str, flag: str = "--label") -> tuple[str, str]:
    key, _, value = item.partition("=")
    if not key:
        raise InvalidArgument(f"invalid argument {item!r} for {flag}: empty name")
    return key, value


def labels_from_file(path: str) -> list[tuple[str, str]]:
    return [label_pair(line, f"--label-file {path}") for line in read_lines(path, "--label-file")]

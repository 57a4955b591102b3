"""Dockerfile-style ``--change`` instructions for ``kobako import`` (as ``docker import -c`` takes them).

Supported: CMD, ENTRYPOINT (JSON array or shell form), ENV (``K=V ...`` or ``K V``), LABEL (``K=V ...``),
EXPOSE (``80``, ``80/udp``), VOLUME (JSON array or words), USER, WORKDIR, STOPSIGNAL, ONBUILD.
"""

from __future__ import annotations

import shlex

from kobako.errors import InvalidArgument
from kobako.oci import jsoncodec

INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME",
                "WORKDIR")  # fmt: skip


def _exec_form(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    try:
        value = jsoncodec.loads(rest, "change")
    except InvalidArgument:
        return None  # not JSON after all: Docker then treats it as shell form
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _pairs(rest: str, what: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise InvalidArgument(f"{what}: {exc}") from None
    if not words:
        raise InvalidArgument(f"{what} needs at least one argument")
    if "=" not in words[0]:
        if what == "ENV" and len(words) >= 2:  # legacy "ENV KEY value with spaces"
            key, _, value = rest.strip().partition(" ")
            return [(key, value.strip())]
        raise InvalidArgument(f"{what} {rest!r}: want KEY=VALUE")
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"{what} {rest!r}: {word!r} is not KEY=VALUE")
        out.append((key, value))
    return out


def apply_changes(config: dict, changes: list[str]) -> dict:
    """Apply each change to the ``config`` section of an image config (the dict is changed and returned)."""
    for change in changes:
        line = change.strip()
        instr, _, rest = line.partition(" ")
        if not rest.strip() and "\t" in instr:
            instr, _, rest = line.partition("\t")
        instr, rest = instr.upper(), rest.strip()
        if instr not in INSTRUCTIONS:
            raise InvalidArgument(f"{instr or change!r} is not a valid change command (want one of "
                                  f"{', '.join(INSTRUCTIONS)})")  # fmt: skip
        if not rest:
            raise InvalidArgument(f"{instr} needs an argument")
        if instr in ("CMD", "ENTRYPOINT"):
            argv = _exec_form(rest)
            config["Cmd" if instr == "CMD" else "Entrypoint"] = (
                argv if argv is not None else ["/bin/sh", "-c", rest]
            )
        elif instr == "ENV":
            env = list(config.get("Env") or [])
            for key, value in _pairs(rest, "ENV"):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif instr == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs(rest, "LABEL"))
            config["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for word in rest.split():
                port, _, proto = word.partition("/")
                if not port.isdigit() or not 0 < int(port) < 65536 or proto not in ("", "tcp", "udp", "sctp"):
                    raise InvalidArgument(f"EXPOSE: invalid port {word!r}")
                ports[f"{int(port)}/{proto or 'tcp'}"] = {}
            config["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(config.get("Volumes") or {})
            for path in _exec_form(rest) or rest.split():
                if not path.startswith("/"):
                    raise InvalidArgument(f"VOLUME: {path!r} is not an absolute path")
                vols[path] = {}
            config["Volumes"] = vols
        elif instr == "USER":
            config["User"] = rest
        elif instr == "WORKDIR":
            config["WorkingDir"] = rest if rest.startswith("/") else "/" + rest
        elif instr == "STOPSIGNAL":
            config["StopSignal"] = rest
        else:
            config["OnBuild"] = [*(config.get("OnBuild") or []), rest]
    return config

"""Logical lines → a validated :class:`~kobako.build.dockerfile.ast.Dockerfile`.

    df = parse(text, "Dockerfile")      # raises DockerfileSyntaxError("Dockerfile:3:1: unknown instruction: FOO")

Every instruction is checked here, before anything runs: its name, its ``--flags`` (known, with values where
they need them), its argument count and form (exec form is a JSON array of strings; SHELL needs it),
ENV/LABEL/ARG pairs, FROM's ``AS name``, ONBUILD and HEALTHCHECK sub-instructions, stage names (unique,
lower case ``[a-z][a-z0-9-_.]*``). Arguments stay raw: variables are expanded when the build runs.
"""

from __future__ import annotations

from kobako.build.dockerfile.ast import Dockerfile, DockerfileError, Instruction, Stage
from kobako.build.dockerfile.expand import split_words
from kobako.build.dockerfile.lexer import LogicalLine, directives, logical_lines, split_lines
from kobako.errors import InvalidArgument

# name → {flag: kind}; kind "str" needs a value, "bool" may have one, "list" repeats.
FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": "str"},
    "RUN": {"mount": "list", "network": "str", "security": "str"},
    "COPY": {"from": "str", "chown": "str", "chmod": "str", "link": "bool", "parents": "bool", "exclude": "list"},
    "ADD": {"chown": "str", "chmod": "str", "checksum": "str", "keep-git-dir": "bool", "link": "bool",
            "unpack": "bool", "exclude": "list"},
    "HEALTHCHECK": {"interval": "str", "timeout": "str", "start-period": "str", "start-interval": "str",
                    "retries": "str"},
}  # fmt: skip
INSTRUCTIONS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")  # fmt: skip
_RAW_TEXT = ("RUN", "CMD", "ENTRYPOINT", "MAINTAINER", "USER", "WORKDIR", "STOPSIGNAL")
_STAGE_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz")
_STAGE_CHARS = _STAGE_FIRST | frozenset("0123456789-_.")


class DockerfileSyntaxError(InvalidArgument):
    """``FILE:LINE:COLUMN: message``; ``path``, ``line``, ``column`` are kept as attributes."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.reason = message


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    try:
        return _parse(text, path)
    except DockerfileError as exc:
        raise DockerfileSyntaxError(path, exc.line or 1, exc.column or 1, exc.message) from None


def _parse(text: str, path: str) -> Dockerfile:
    lines = split_lines(text)
    found, start = directives(lines)
    escape = found.get("escape", "\\")
    df = Dockerfile(path, found, escape)
    stage: Stage | None = None
    for ll in logical_lines(lines, start, escape):
        ins = parse_instruction(ll, escape)
        if ins.cmd == "FROM":
            stage = _new_stage(df, ins)
            df.stages.append(stage)
        elif stage is None:
            if ins.cmd != "ARG":
                raise DockerfileError(f"{ins.cmd} before the first FROM: only ARG may come before FROM",
                                      ins.line, ins.column)  # fmt: skip
            df.meta_args.append(ins)
        else:
            stage.instructions.append(ins)
    if not df.stages:
        raise DockerfileError("the Dockerfile has no FROM instruction", len(lines), 1)
    return df


def _new_stage(df: Dockerfile, ins: Instruction) -> Stage:
    args = ins.args
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if name[0] not in _STAGE_FIRST or not _STAGE_CHARS.issuperset(name):
            raise _at(
                ins, f"invalid stage name {args[2]!r}: use a letter then letters, digits, '-', '_' or '.'"
            )
        if df.stage_by_name(name) is not None:
            raise _at(ins, f"duplicate stage name {name!r}")
    elif len(args) != 1:
        raise _at(ins, "FROM requires either one or three arguments: FROM IMAGE [AS NAME]")
    return Stage(len(df.stages), args[0], name, ins.flag("platform") or "", ins)


def _at(ins: Instruction, message: str) -> DockerfileError:
    return DockerfileError(message, ins.line, ins.column)


def _take_flags(text: str) -> tuple[list[tuple[str, int]], int]:
    """Leading ``--flag`` words (quotes removed) with their offsets, and the offset of the arguments."""
    words: list[tuple[str, int]] = []
    i = 0
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if not text.startswith("--", i):
            return words, i
        word: list[str] = []
        quote = ""
        start = i
        while i < len(text) and (quote or text[i] not in " \t"):
            ch = text[i]
            if quote:
                if ch == quote:
                    quote = ""
                else:
                    word.append(ch)
            elif ch in "'\"":
                quote = ch
            else:
                word.append(ch)
            i += 1
        if "".join(word) != "--":
            words.append(("".join(word), start))


def parse_instruction(ll: LogicalLine, escape: str) -> Instruction:
    text = ll.text
    lead = len(text) - len(text.lstrip(" \t"))
    body = text[lead:]
    name, _, _ = body.partition(" ")
    name = name.split("\t", 1)[0]
    cmd = name.upper()
    ins = Instruction(cmd, body.rstrip(" \t"), *ll.position(lead), end_line=ll.end_line)
    ins.heredocs = list(ll.heredocs)
    if cmd not in INSTRUCTIONS:
        raise _at(ins, f"unknown instruction: {name}")
    offset = lead + len(name)
    flags, skip = _take_flags(text[offset:])
    _flags(ins, flags, ll, offset)
    offset += skip
    rest = text[offset:].rstrip(" \t")
    try:
        _arguments(ins, rest, escape, ll, offset)
    except DockerfileError as exc:
        if not exc.line:
            exc.line, exc.column = ll.position(offset) if rest else (ins.line, ins.column)
        raise
    return ins


def _flags(ins: Instruction, words: list[tuple[str, int]], ll: LogicalLine, base: int) -> None:
    known = FLAGS.get(ins.cmd, {})
    for word, at in words:
        key, eq, value = word[2:].partition("=")
        kind = known.get(key)
        line, col = ll.position(base + at)
        if kind is None:
            allowed = ", ".join("--" + k for k in known) or "none"
            raise DockerfileError(f"unknown flag: --{key} (flags of {ins.cmd}: {allowed})", line, col)
        if kind != "bool" and not eq:
            raise DockerfileError(f"missing a value on flag --{key}: use --{key}=VALUE", line, col)
        if kind == "bool" and eq and value.lower() not in ("true", "false", "1", "0"):
            raise DockerfileError(f"expecting boolean value for flag --{key}, not {value!r}", line, col)
        if kind != "list" and key in ins.flags:
            raise DockerfileError(f"duplicate flag specified: --{key}", line, col)
        ins.flags.setdefault(key, []).append(value if eq else "")


def _json_list(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    import json

    try:
        value = json.loads(rest)
    except ValueError:
        return None  # Docker treats text that is not a JSON array as shell form
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _arguments(ins: Instruction, rest: str, escape: str, ll: LogicalLine, offset: int) -> None:
    cmd = ins.cmd
    if cmd in ("ENV", "LABEL"):
        ins.pairs = _pairs(cmd, rest, escape)
        return
    if cmd == "ARG":
        ins.pairs = _arg_pairs(rest, escape)
        return
    if cmd == "ONBUILD":
        _onbuild(ins, rest, escape, ll, offset)
        return
    if cmd == "HEALTHCHECK":
        _healthcheck(ins, rest, escape, ll, offset)
        return
    exec_form = (
        _json_list(rest) if cmd in ("RUN", "CMD", "ENTRYPOINT", "COPY", "ADD", "VOLUME", "SHELL") else None
    )
    if exec_form is not None:
        ins.args, ins.json = exec_form, True
    elif cmd == "SHELL":
        raise DockerfileError(
            'SHELL requires the arguments to be in JSON form: SHELL ["executable", "param"]'
        )
    elif cmd in _RAW_TEXT:
        ins.args = [rest] if rest else []
    else:
        ins.args = rest.split()
    _arity(ins)


def _arity(ins: Instruction) -> None:
    cmd, n = ins.cmd, len(ins.args)
    if cmd in ("COPY", "ADD"):
        if n < 2:
            raise DockerfileError(f"{cmd} requires at least two arguments, but only {n} was provided. "
                                  "Destination could not be determined.")  # fmt: skip
    elif cmd == "RUN":
        if n == 0 and not ins.json:
            raise DockerfileError("RUN requires at least one argument")
    elif cmd in ("CMD", "ENTRYPOINT") and n == 0 and not ins.json:
        raise DockerfileError(f"{cmd} requires at least one argument")
    elif cmd == "SHELL" and n == 0:
        raise DockerfileError("SHELL requires at least one argument")
    elif cmd in ("EXPOSE", "VOLUME", "MAINTAINER", "USER", "WORKDIR", "STOPSIGNAL", "FROM") and n == 0:
        raise DockerfileError(f"{cmd} requires at least one argument")
    if cmd == "STOPSIGNAL" and len(ins.args[0].split()) != 1:
        raise DockerfileError("STOPSIGNAL requires exactly one argument")
    if cmd == "VOLUME" and ins.json and any(not v.strip() for v in ins.args):
        raise DockerfileError("VOLUME specified can not be an empty string")


def _pairs(cmd: str, rest: str, escape: str) -> list[tuple[str, str | None]]:
    words = split_words(rest, escape)
    if not words:
        raise DockerfileError(f"{cmd} requires at least one argument")
    if "=" not in words[0]:
        # legacy "ENV key value with spaces": the rest of the line is the value
        if len(words) < 2:
            raise DockerfileError(f"{cmd} {words[0]}: missing a value (want {cmd} KEY=VALUE)")
        key = words[0]
        value = rest.lstrip()[len(key) :].strip(" \t")
        return [(key, value)]
    out: list[tuple[str, str | None]] = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise DockerfileError(f"syntax error - can't find = in {word!r}. Must be of the form: name=value")
        if not key:
            raise DockerfileError(f"{cmd} names can not be blank")
        out.append((key, value))
    return out


def _arg_pairs(rest: str, escape: str) -> list[tuple[str, str | None]]:
    words = split_words(rest, escape)
    if not words:
        raise DockerfileError("ARG requires at least one argument")
    out: list[tuple[str, str | None]] = []
    for word in words:
        key, eq, value = word.partition("=")
        if not key:
            raise DockerfileError(f"ARG names can not be blank: {word!r}")
        out.append((key, value if eq else None))
    return out


def _onbuild(ins: Instruction, rest: str, escape: str, ll: LogicalLine, offset: int) -> None:
    if not rest:
        raise DockerfileError("ONBUILD requires at least one argument")
    sub_ll = LogicalLine()
    line, col = ll.position(offset)
    sub_ll.add(rest, line, col)
    sub_ll.heredocs = list(ll.heredocs)
    sub = parse_instruction(sub_ll, escape)
    if sub.cmd == "ONBUILD":
        raise DockerfileError("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", line, col)
    if sub.cmd in ("FROM", "MAINTAINER"):
        raise DockerfileError(f"{sub.cmd} isn't allowed as an ONBUILD trigger", line, col)
    ins.sub = sub
    ins.args = [rest]


def _healthcheck(ins: Instruction, rest: str, escape: str, ll: LogicalLine, offset: int) -> None:
    kind, _, tail = rest.partition(" ")
    kind = kind.split("\t", 1)[0].upper()
    if kind == "NONE":
        if tail.strip() or ins.flags:
            raise DockerfileError("HEALTHCHECK NONE takes no other arguments")
        ins.args = ["NONE"]
        return
    if kind != "CMD":
        raise DockerfileError("HEALTHCHECK requires CMD (HEALTHCHECK [OPTIONS] CMD command) or NONE")
    sub_ll = LogicalLine()
    line, col = ll.position(offset)
    sub_ll.add(rest, line, col)
    sub = parse_instruction(sub_ll, escape)
    if not sub.args:
        raise DockerfileError("HEALTHCHECK CMD requires a command")
    ins.sub = sub
    ins.args = ["CMD"]
    if ins.flag("retries") is not None:
        value = ins.flag("retries") or ""
        if not value.isdigit():
            raise DockerfileError(f"HEALTHCHECK --retries={value!r}: want a whole number")

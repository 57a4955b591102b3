"""The instructions that change the image config (and WORKDIR, which also makes its directory), plus ARG.

Each ``prepare`` expands its arguments with the variables in effect *before* the instruction (so
``ENV a=2 b=$a`` gives ``b`` the old ``a``), returns the cache key parts, and applies the change with a
history entry in Docker's form: ``/bin/sh -c #(nop)  CMD ["sh"]``, ``empty_layer: true``.
"""

from __future__ import annotations

import json
import os

from kobako.build.dockerfile.expand import process_word, process_words
from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.build.dockerfile.ast import Instruction
    from kobako.build.session import Session, Step
    from kobako.build.state import StageState

NOP = "/bin/sh -c #(nop)  "
DEFAULT_SHELL = ["/bin/sh", "-c"]
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9}  # fmt: skip


def _step(
    key: list, apply: Callable[[StageState], None], after: Callable[[StageState], None] | None = None
) -> Step:
    from kobako.build.session import Step

    return Step(key, apply, after)


def _go_list(values: list[str]) -> str:
    """Docker's history form of a list: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def prepare(session: Session, ins: Instruction, state: StageState) -> Step:
    env = state.expansion_env()

    def word(text: str) -> str:
        return process_word(text, env, session.escape)

    return _HANDLERS[ins.cmd](session, ins, state, word)


def _env(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    pairs = [(word(k), word(v or "")) for k, v in ins.pairs]

    def apply(new: StageState) -> None:
        for k, v in pairs:
            new.set_env(k, v)
        new.add_history(NOP + "ENV " + " ".join(f"{k}={v}" for k, v in pairs), empty_layer=True)

    return _step(["ENV", pairs], apply)


def _label(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    pairs = [(word(k), word(v or "")) for k, v in ins.pairs]

    def apply(new: StageState) -> None:
        labels = dict(new.section.get("Labels") or {})
        labels.update(pairs)
        new.section["Labels"] = labels
        new.add_history(NOP + "LABEL " + " ".join(f"{k}={v}" for k, v in pairs), empty_layer=True)

    return _step(["LABEL", pairs], apply)


def _command(ins: Instruction, state: StageState) -> list[str]:
    if ins.json:
        return list(ins.args)
    return [*(state.section.get("Shell") or DEFAULT_SHELL), ins.args[0]]


def _cmd(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    argv = _command(ins, state)

    def apply(new: StageState) -> None:
        new.section["Cmd"] = argv
        new.add_history(NOP + "CMD " + _go_list(argv), empty_layer=True)

    def after(new: StageState) -> None:
        new.cmd_set = True

    return _step(["CMD", argv], apply, after)


def _entrypoint(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    argv = _command(ins, state)
    keep_cmd = state.cmd_set

    def apply(new: StageState) -> None:
        new.section["Entrypoint"] = argv
        if not keep_cmd:  # an ENTRYPOINT drops the CMD inherited from the base image
            new.section.pop("Cmd", None)
        new.add_history(NOP + "ENTRYPOINT " + _go_list(argv), empty_layer=True)

    return _step(["ENTRYPOINT", argv, keep_cmd], apply)


def _port(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid EXPOSE {spec!r}: protocol must be tcp, udp or sctp")
    low, dash, high = port.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise InvalidArgument(f"invalid EXPOSE {spec!r}: want PORT[-PORT][/PROTO]")
    first, last = int(low), int(high) if dash else int(low)
    if not 0 < first <= last <= 65535:
        raise InvalidArgument(f"invalid EXPOSE {spec!r}: ports are 1-65535")
    return [f"{p}/{proto}" for p in range(first, last + 1)]


def _expose(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    env = state.expansion_env()
    ports = [p for raw in ins.args for w in process_words(raw, env, session.escape) for p in _port(w)]

    def apply(new: StageState) -> None:
        exposed = dict(new.section.get("ExposedPorts") or {})
        exposed.update({p: {} for p in ports})
        new.section["ExposedPorts"] = exposed
        new.add_history(NOP + "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in sorted(set(ports))) + "]",
                        empty_layer=True)  # fmt: skip

    return _step(["EXPOSE", ports], apply)


def _volume(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    paths = [word(a) for a in ins.args]
    if any(not p.strip() for p in paths):
        raise InvalidArgument("VOLUME specified can not be an empty string")

    def apply(new: StageState) -> None:
        volumes = dict(new.section.get("Volumes") or {})
        volumes.update({p: {} for p in paths})
        new.section["Volumes"] = volumes
        new.add_history(NOP + "VOLUME [" + " ".join(paths) + "]", empty_layer=True)

    return _step(["VOLUME", paths], apply)


def _user(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    user = word(ins.args[0])
    if not user:
        raise InvalidArgument("USER requires a user name or ID")

    def apply(new: StageState) -> None:
        new.section["User"] = user
        new.add_history(NOP + "USER " + user, empty_layer=True)

    return _step(["USER", user], apply)


def _stopsignal(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    from kobako.runtime import signals

    sig = word(ins.args[0])
    try:
        signals.parse(sig)
    except Exception:
        raise InvalidArgument(f"STOPSIGNAL {sig!r} is not a signal") from None

    def apply(new: StageState) -> None:
        new.section["StopSignal"] = sig
        new.add_history(NOP + "STOPSIGNAL " + sig, empty_layer=True)

    return _step(["STOPSIGNAL", sig], apply)


def duration_ns(text: str, what: str) -> int:
    """Go's time.ParseDuration ("30s", "1m30s", "500ms") in nanoseconds."""
    total, i, n = 0, 0, len(text)
    if not text:
        raise InvalidArgument(f"{what}: empty duration")
    if text == "0":
        return 0
    while i < n:
        j = i
        while j < n and (text[j].isdigit() or text[j] == "."):
            j += 1
        k = j
        while k < n and not (text[k].isdigit() or text[k] == "."):
            k += 1
        number, unit = text[i:j], text[j:k]
        if not number or unit not in _DURATION_UNITS:
            raise InvalidArgument(f"{what}: invalid duration {text!r} (use e.g. 30s, 1m30s, 500ms)")
        total += int(float(number) * _DURATION_UNITS[unit])
        i = k
    return total


def _healthcheck(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    if ins.args == ["NONE"]:
        test = ["NONE"]
    else:
        assert ins.sub is not None
        test = ["CMD", *ins.sub.args] if ins.sub.json else ["CMD-SHELL", ins.sub.args[0]]
    hc: dict[str, object] = {"Test": test}
    if test != ["NONE"]:
        for flag, field in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                            ("start-interval", "StartInterval")):  # fmt: skip
            value = ins.flag(flag)
            if value is not None:
                ns = duration_ns(value, f"HEALTHCHECK --{flag}")
                if 0 < ns < 10**6 or ns < 0:
                    raise InvalidArgument(f"HEALTHCHECK --{flag} cannot be less than 1ms")
                if ns:
                    hc[field] = ns
        if ins.flag("retries") is not None:
            retries = int(ins.flag("retries") or "0")
            if retries:
                hc["Retries"] = retries

    def apply(new: StageState) -> None:
        new.section["Healthcheck"] = hc
        new.add_history(NOP + "HEALTHCHECK &{" + _go_list(test) + "}", empty_layer=True)

    return _step(["HEALTHCHECK", hc], apply)


def _shell(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    shell = list(ins.args)

    def apply(new: StageState) -> None:
        new.section["Shell"] = shell
        new.add_history(NOP + "SHELL " + _go_list(shell), empty_layer=True)

    return _step(["SHELL", shell], apply)


def _maintainer(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    author = ins.args[0]

    def apply(new: StageState) -> None:
        new.config["author"] = author
        new.add_history(NOP + "MAINTAINER " + author, empty_layer=True)

    return _step(["MAINTAINER", author], apply)


def _onbuild(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    assert ins.sub is not None
    text = ins.args[0]
    name, _, rest = text.partition(" ")
    trigger = f"{name.upper()} {rest}".strip()

    def apply(new: StageState) -> None:
        new.section["OnBuild"] = [*(new.section.get("OnBuild") or []), trigger]
        new.add_history(NOP + "ONBUILD " + trigger, empty_layer=True)

    return _step(["ONBUILD", trigger], apply)


def _workdir(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    path = word(ins.args[0])
    if not path:
        raise InvalidArgument("WORKDIR requires a path")
    path = os.path.normpath(os.path.join(str(state.section.get("WorkingDir") or "/"), path))
    user = str(state.section.get("User") or "")

    def apply(new: StageState) -> None:
        from kobako.build.run import make_dirs, owner_of

        new.section["WorkingDir"] = path
        ws = session.layers.workspace(new)
        try:
            rootfs = ws.open()
            make_dirs(rootfs, path, owner_of(rootfs, user))
            made = ws.commit(new)
        finally:
            ws.close()
        new.add_history(NOP + "WORKDIR " + path, empty_layer=not made)

    return _step(["WORKDIR", path, user], apply)


def _arg(session: Session, ins: Instruction, state: StageState, word: Callable[[str], str]) -> Step:
    values: list[tuple[str, str | None]] = []
    for raw_name, raw_default in ins.pairs:
        name = word(raw_name)
        session.used_args.add(name)
        if name in session.build_args:
            values.append((name, session.build_args[name]))
        elif raw_default is not None:
            values.append((name, word(raw_default)))
        elif name in session.global_args:
            values.append((name, session.global_args[name]))
        else:
            values.append((name, None))

    def after(new: StageState) -> None:
        for name, value in values:
            if value is None:
                new.args.pop(name, None)
            else:
                new.args[name] = value

    from kobako.build.session import Step

    return Step(None, None, after)


_HANDLERS: dict[str, Callable[..., Step]] = {
    "ENV": _env, "LABEL": _label, "CMD": _cmd, "ENTRYPOINT": _entrypoint, "EXPOSE": _expose,
    "VOLUME": _volume, "USER": _user, "STOPSIGNAL": _stopsignal, "HEALTHCHECK": _healthcheck,
    "SHELL": _shell, "MAINTAINER": _maintainer, "ONBUILD": _onbuild, "WORKDIR": _workdir, "ARG": _arg,
}  # fmt: skip

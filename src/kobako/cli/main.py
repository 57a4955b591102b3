"""`kobako`: docker-like verbs. This module only dispatches; each verb's module is imported on use.

COMMANDS maps a verb (or "group verb") to "module:function"; the function takes the remaining argv and
returns an exit code. Errors from kobako are printed as ``kobako: message`` with a non-zero exit.
"""

from __future__ import annotations

import gc
import os
import sys

from kobako.errors import InvalidArgument, KobakoError

COMMANDS: dict[str, str] = {}
GROUPS: dict[str, dict[str, str]] = {}
ALIASES: dict[str, str] = {}
#: Targets that start with the cyclic garbage collector off (under :func:`run_and_exit`) and turn it back on
#: themselves: `kobako run` would otherwise spend milliseconds of its critical path scanning, several times
#: over, the tens of thousands of objects its imports make and keep until exit.
GC_OFF = {"kobako.cli.containers:cmd_run", "kobako.cli.containers:cmd_create"}
USAGE = """usage: kobako COMMAND [OPTIONS] [ARGS...]

A hackable container platform. The OCI runtime alone is `kobako-runtime`.
Run `kobako COMMAND --help` for a command's flags."""


def register(verb: str, target: str, group: str | None = None) -> None:
    if group is None:
        COMMANDS[verb] = target
    else:
        GROUPS.setdefault(group, {})[verb] = target


def _load_table() -> None:
    # Filled by kobako.cli.commands (one place to see every verb); imported lazily to keep start-up small.
    from kobako.cli import commands  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if not args or args[0] in ("-h", "--help", "help"):
            _load_table()
            print(USAGE + "\n\ncommands:\n  " + "  ".join(sorted([*COMMANDS, *GROUPS])))
            return 0
        if args[0] in ("-v", "--version", "version"):
            from kobako import __version__

            print(f"kobako version {__version__}")
            return 0
        _load_table()
        verb, rest = args[0], args[1:]
        verb = ALIASES.get(verb, verb)
        if verb in GROUPS:
            if not rest or rest[0] in ("-h", "--help"):
                print(f"usage: kobako {verb} COMMAND\n\ncommands:\n  " + "  ".join(sorted(GROUPS[verb])))
                return 0 if rest else 2
            sub = rest[0]
            if sub not in GROUPS[verb]:
                raise InvalidArgument(f"unknown command 'kobako {verb} {sub}'")
            target, rest = GROUPS[verb][sub], rest[1:]
        elif verb in COMMANDS:
            target = COMMANDS[verb]
        else:
            raise InvalidArgument(f"unknown command {verb!r} (see kobako --help)")
        if target not in GC_OFF:
            gc.enable()
        module_name, _, function = target.partition(":")
        __import__(module_name)  # not importlib.import_module: importlib costs an import of its own
        return int(getattr(sys.modules[module_name], function)(rest) or 0)
    except KobakoError as exc:
        sys.stderr.write(f"kobako: {exc}\n")
        return 125 if isinstance(exc, InvalidArgument) else exc.exit_code
    except BrokenPipeError as exc:
        if _stdout_gone():  # `kobako ps | head -1`: the reader is done, which is no failure of ours
            return 0
        sys.stderr.write(f"kobako: {exc}\n")  # any other pipe or socket: a real failure, never hidden
        return 1
    except KeyboardInterrupt:
        return 130


def _stdout_gone() -> bool:
    """Whether the reader of our stdout went away (poll reports POLLERR on a pipe whose read end closed)."""
    import select

    try:
        poller = select.poll()
        poller.register(1, 0)
        return any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def run_and_exit() -> None:
    """Console entry point: flush and skip interpreter teardown. The garbage collector is off until the verb
    is known (see GC_OFF)."""
    gc.disable()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)

"""A small docker-style flag parser for `kobako` verbs (argparse costs ~10 ms of start-up).

A verb declares its flags once::

    SPEC = Flags(
        Flag("detach", "-d", "--detach"),                   # boolean
        Flag("env", "-e", "--env", value=True, many=True),  # repeatable, value
        Flag("name", "--name", value=True),
    )
    opts, rest = SPEC.parse(argv, stop_at_positional=True)   # `run IMAGE CMD...` stops at IMAGE

Accepted forms: ``--name x``, ``--name=x``, ``-e K=V``, ``-eK=V``, grouped booleans ``-it``,
``--rm=false``. Unknown flags and missing values raise InvalidArgument naming them.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument


class Flag:
    def __init__(self, dest: str, *names: str, value: bool = False, many: bool = False, default: object = None,
                 help: str = "") -> None:  # fmt: skip
        self.dest = dest
        self.names = names
        self.value = value
        self.many = many
        self.default = [] if many and default is None else default
        self.help = help


class Options(dict):
    """Parsed flags; attribute access for convenience (``opts.detach``)."""

    def __getattr__(self, name: str) -> object:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Flags:
    def __init__(self, *flags: Flag) -> None:
        self.flags = flags
        self.by_name = {name: f for f in flags for name in f.names}

    def usage(self) -> str:
        lines = []
        for f in self.flags:
            names = ", ".join(f.names) + (" VALUE" if f.value else "")
            lines.append(f"  {names:<32} {f.help}")
        return "\n".join(lines)

    def parse(self, argv: list[str], stop_at_positional: bool = False) -> tuple[Options, list[str]]:
        opts = Options({f.dest: (list(f.default) if f.many else f.default) for f in self.flags})  # type: ignore[arg-type]
        rest: list[str] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                rest.extend(argv[i + 1 :])
                break
            if not arg.startswith("-") or arg == "-":
                if stop_at_positional:
                    rest.extend(argv[i:])
                    break
                rest.append(arg)
                i += 1
                continue
            if arg.startswith("--"):
                name, eq, value = arg.partition("=")
                i = self._take(opts, name, value if eq else None, argv, i)
            else:
                i = self._short(opts, arg, argv, i)
        return opts, rest

    def _short(self, opts: Options, arg: str, argv: list[str], i: int) -> int:
        # -d, -e VALUE, -eVALUE, -e=VALUE, -it (grouped booleans), -p 8080:80
        letters = arg[1:]
        for pos, letter in enumerate(letters):
            flag = self.by_name.get("-" + letter)
            if flag is None:
                raise InvalidArgument(f"unknown shorthand flag: {letter!r} in {arg}")
            if flag.value:
                inline = letters[pos + 1 :]
                if inline.startswith("="):
                    inline = inline[1:]
                return self._take(opts, "-" + letter, inline if inline else None, argv, i)
            self._store(flag, opts, True)
        return i + 1

    def _take(self, opts: Options, name: str, value: str | None, argv: list[str], i: int) -> int:
        flag = self.by_name.get(name)
        if flag is None:
            raise InvalidArgument(f"unknown flag: {name}")
        if not flag.value:
            if value is None:
                self._store(flag, opts, True)
            elif value.lower() in ("true", "1", "false", "0"):
                self._store(flag, opts, value.lower() in ("true", "1"))
            else:
                raise InvalidArgument(f"invalid boolean value {value!r} for {name}")
            return i + 1
        if value is None:
            if i + 1 >= len(argv):
                raise InvalidArgument(f"flag needs an argument: {name}")
            value = argv[i + 1]
            i += 1
        self._store(flag, opts, value)
        return i + 1

    @staticmethod
    def _store(flag: Flag, opts: Options, value: object) -> None:
        if flag.many:
            opts[flag.dest].append(value)  # type: ignore[union-attr]
        else:
            opts[flag.dest] = value


HELP = Flag("help", "--help", help="print usage")


def print_usage(text: str, flags: Flags) -> int:
    """``--help`` of a verb: ``usage: kobako TEXT`` and its flags; exit code 0."""
    print(f"usage: kobako {text}\n\n{flags.usage()}")
    return 0


def parse_labels(items: list[str], flag: str = "--label") -> dict[str, str]:
    """``K=V`` (or a bare ``K``, an empty value) items into a dict; an empty name is an error."""
    from kobako.engine.envfiles import label_pair

    return dict(label_pair(item, flag) for item in items)

"""The parsed Dockerfile: plain classes, no behaviour beyond describing themselves.

A :class:`Dockerfile` has parser ``directives``, the ``meta_args`` (ARGs before the first FROM) and
``stages``; a :class:`Stage` has its FROM line (``base``, ``name``, ``platform``) and :class:`Instruction`s.
Instruction arguments are kept raw (unexpanded): variables are substituted when the build reaches them,
because their values depend on the build arguments and the ENVs in effect at that point.
"""

from __future__ import annotations


class DockerfileError(ValueError):
    """A syntax error at ``line``:``column`` (1-based) of the Dockerfile; see :mod:`.parser` for the
    kobako error it becomes."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class Heredoc:
    """``<<EOF`` (``chomp`` for ``<<-``, tabs stripped already; ``expand`` False when the delimiter was
    quoted)."""

    __slots__ = ("content", "expand", "name")

    def __init__(self, name: str, content: str, expand: bool) -> None:
        self.name = name
        self.content = content
        self.expand = expand

    def __repr__(self) -> str:
        return f"Heredoc({self.name!r}, {self.content!r}, expand={self.expand})"


class Instruction:
    """One instruction.

    ``cmd`` upper case; ``line``/``column`` where it starts, ``end_line`` its last physical line;
    ``original`` the instruction as written (continuations joined, heredoc bodies excluded);
    ``flags`` the ``--name=value`` options before the arguments (each name → its values, in order);
    ``args`` the arguments: the JSON list in exec form (``json``), else the raw words (for RUN, CMD,
    ENTRYPOINT, MAINTAINER, USER, WORKDIR, STOPSIGNAL the whole raw text is ``args[0]``);
    ``pairs`` (ENV, LABEL, ARG) raw ``(key, value or None)``; ``heredocs`` the here-documents in order;
    ``sub`` the trigger of ONBUILD or the CMD of HEALTHCHECK.
    """

    __slots__ = ("args", "cmd", "column", "end_line", "flags", "heredocs", "json", "line", "original", "pairs",
                 "sub")  # fmt: skip

    def __init__(self, cmd: str, original: str, line: int, column: int = 1, end_line: int = 0) -> None:
        self.cmd = cmd
        self.original = original
        self.line = line
        self.column = column
        self.end_line = end_line or line
        self.flags: dict[str, list[str]] = {}
        self.args: list[str] = []
        self.json = False
        self.pairs: list[tuple[str, str | None]] = []
        self.heredocs: list[Heredoc] = []
        self.sub: Instruction | None = None

    def flag(self, name: str, default: str | None = None) -> str | None:
        """The last value of ``--name`` or ``default``."""
        values = self.flags.get(name)
        return values[-1] if values else default

    def bool_flag(self, name: str) -> bool:
        value = self.flag(name)
        return value is not None and value.lower() in ("", "true", "1")

    def text(self) -> str:
        """The instruction after its name, as written (for messages and ONBUILD triggers)."""
        return self.original.split(None, 1)[1] if len(self.original.split(None, 1)) > 1 else ""

    def __repr__(self) -> str:
        return f"Instruction({self.cmd} line {self.line}: {self.original!r})"


class Stage:
    """One FROM and what follows it. ``name`` is lower case ("" if unnamed); ``index`` counts from 0."""

    __slots__ = ("base", "from_instruction", "index", "instructions", "name", "platform")

    def __init__(
        self, index: int, base: str, name: str, platform: str, from_instruction: Instruction
    ) -> None:
        self.index = index
        self.base = base
        self.name = name
        self.platform = platform
        self.from_instruction = from_instruction
        self.instructions: list[Instruction] = []

    def __repr__(self) -> str:
        return f"Stage({self.index}, {self.base!r} AS {self.name!r}, {len(self.instructions)} instructions)"


class Dockerfile:
    __slots__ = ("directives", "escape", "meta_args", "path", "stages")

    def __init__(self, path: str, directives: dict[str, str], escape: str) -> None:
        self.path = path
        self.directives = directives
        self.escape = escape
        self.meta_args: list[Instruction] = []
        self.stages: list[Stage] = []

    def stage_by_name(self, name: str) -> Stage | None:
        low = name.lower()
        for stage in self.stages:
            if stage.name and stage.name == low:
                return stage
        return None

"""Dockerfile text → parser directives and logical lines (the Dockerfile reference's "Format" rules).

* Parser directives (``# escape=`` ``# syntax=`` ``# check=``) only at the very top; an unknown one, a
  comment, a blank line or an instruction ends them; a directive given twice is an error.
* A line whose first non-blank character is ``#`` is a comment, also inside a continued instruction.
* A line ending in the escape character (then optional blanks) continues on the next line; blank and
  comment lines in between are skipped; the pieces are joined as written (no space added).
* RUN, COPY and ADD may use here-documents (``<<EOF``, ``<<-EOF``, ``<<"EOF"``): the lines after the
  instruction up to the delimiter line are their bodies, in the order the markers appear.

Each :class:`LogicalLine` maps offsets in its text back to (line, column) for error messages.
"""

from __future__ import annotations

from kobako.build.dockerfile.ast import DockerfileError, Heredoc
from kobako.build.dockerfile.expand import ExpandError, process_word, split_words

KNOWN_DIRECTIVES = ("syntax", "escape", "check")
HEREDOC_INSTRUCTIONS = ("RUN", "COPY", "ADD")


class LogicalLine:
    """``text`` of one instruction; ``segments`` are (offset in text, line, column) of each piece."""

    __slots__ = ("end_line", "heredocs", "segments", "text")

    def __init__(self) -> None:
        self.text = ""
        self.segments: list[tuple[int, int, int]] = []
        self.heredocs: list[Heredoc] = []
        self.end_line = 0

    @property
    def line(self) -> int:
        return self.segments[0][1]

    @property
    def column(self) -> int:
        return self.segments[0][2]

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of the character at ``offset`` in ``text``."""
        line, col = self.line, self.column
        for start, seg_line, seg_col in self.segments:
            if start > offset:
                break
            line, col = seg_line, seg_col + (offset - start)
        return line, col

    def add(self, piece: str, line: int, column: int) -> None:
        self.segments.append((len(self.text), line, column))
        self.text += piece
        self.end_line = line


def _directive(line: str) -> tuple[str, str] | None:
    """``# key = value`` → (key lower-cased, value), else None."""
    if not line.startswith("#"):
        return None
    body = line[1:].strip(" \t")
    key, eq, value = body.partition("=")
    key = key.rstrip(" \t")
    if not eq or not key or not key[0].isalpha() or not key.isalnum() or not value.strip(" \t"):
        return None
    return key.lower(), value.strip(" \t")


def _continues(line: str, escape: str) -> tuple[str, bool]:
    """(line without the continuation escape, whether it continues)."""
    stripped = line.rstrip(" \t")
    if stripped.endswith(escape):
        return stripped[: -len(escape)], True
    return line, False


def split_lines(text: str) -> list[str]:
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """The parser directives and the index of the first line after them."""
    found: dict[str, str] = {}
    i = 0
    while i < len(lines):
        d = _directive(lines[i])
        if d is None or d[0] not in KNOWN_DIRECTIVES:
            break
        key, value = d
        if key in found:
            raise DockerfileError(f"only one {key} parser directive can be used", i + 1, 1)
        if key == "escape" and value not in ("\\", "`"):
            raise DockerfileError(f"invalid escape token {value!r} does not match ` or \\", i + 1, 1)
        found[key] = value
        i += 1
    return found, i


def logical_lines(lines: list[str], start: int, escape: str) -> list[LogicalLine]:
    out: list[LogicalLine] = []
    n = len(lines)
    i = start
    while i < n:
        raw = lines[i]
        i += 1
        body = raw.lstrip(" \t")
        if not body or body.startswith("#"):
            continue
        ll = LogicalLine()
        piece, line_no, col = body, i, len(raw) - len(body) + 1
        while True:
            piece, more = _continues(piece, escape)
            ll.add(piece, line_no, col)
            if not more:
                break
            while i < n and (not lines[i].strip(" \t") or lines[i].lstrip(" \t").startswith("#")):
                i += 1
            if i >= n:
                break
            piece, line_no, col = lines[i], i + 1, 1
            i += 1
        i = _read_heredocs(ll, lines, i, escape)
        out.append(ll)
    return out


def _markers(ll: LogicalLine, escape: str) -> list[tuple[str, bool, bool]]:
    """(delimiter, strip tabs, expand) for each ``<<WORD`` in the instruction's arguments."""
    cmd, _, rest = ll.text.lstrip().partition(" ")
    if cmd.upper() not in HEREDOC_INSTRUCTIONS or rest.lstrip().startswith("["):
        return []
    found = []
    for word in split_words(rest, escape):
        head = word.lstrip("0123456789")
        if not head.startswith("<<") or head.startswith("<<<"):
            continue
        raw = head[2:]
        chomp = raw.startswith("-")
        if chomp:
            raw = raw[1:]
        if not raw:
            continue
        try:
            name = process_word(raw, {}, escape)
        except ExpandError as exc:
            line, col = ll.position(ll.text.find(word))
            raise DockerfileError(f"invalid here-document delimiter {raw!r}: {exc}", line, col) from None
        if not name:
            continue
        found.append((name, chomp, name == raw))
    return found


def _read_heredocs(ll: LogicalLine, lines: list[str], i: int, escape: str) -> int:
    for name, chomp, expand in _markers(ll, escape):
        body: list[str] = []
        while True:
            if i >= len(lines):
                raise DockerfileError(
                    f"unterminated here-document: no line {name!r} ends it", ll.line, ll.column
                )
            raw = lines[i]
            i += 1
            text = raw.lstrip("\t") if chomp else raw
            if text == name:
                break
            body.append(text)
        ll.heredocs.append(Heredoc(name, "".join(b + "\n" for b in body), expand))
        ll.end_line = i
    return i

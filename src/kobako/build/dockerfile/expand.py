"""Dockerfile word processing: quotes, escapes and ``$VAR`` substitution, as Docker's shell lexer does them.

    process_word('"$A"_b', {"A": "x y"})        -> 'x y_b'          (quotes removed, one word)
    process_words("a 'b c' $A", {"A": "1 2"})  -> ['a', 'b c', '1', '2']
    split_words('k="a b" j=c')                 -> ['k="a b"', 'j=c']  (quotes kept: ENV/LABEL pairs)

Rules (the Dockerfile reference, "Environment replacement"): ``$name`` and ``${name}``; ``${name:-word}``,
``${name-word}``, ``${name:+word}``, ``${name+word}``, ``${name:?msg}``, ``${name?msg}``; the pattern forms
``${name#pat}``, ``##``, ``%``, ``%%``, ``/pat/rep``, ``//pat/rep`` (``?`` and ``*`` globs). Inside single
quotes nothing is special; inside double quotes only ``$`` and the escape character before ``"``, ``$`` or
itself. Outside quotes the escape character makes the next character literal. Unset variables are empty.
Bad input raises :class:`ExpandError` (a ValueError) with a short reason; callers add the position.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_SPECIAL_PARAMS = "@*#?-$!0"
_EOF = ""


class ExpandError(ValueError):
    pass


class _Words:
    """Collects words split on unquoted whitespace; quoted empty strings still make a word."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.cur: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch in " \t\r\n":
            self.flush()
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.cur.append(text)
        self.in_word = True

    def add_expanded(self, text: str) -> None:
        # An unquoted expansion is split like the shell would (its whitespace separates words).
        for ch in text:
            self.add_char(ch)

    def flush(self) -> None:
        if self.in_word:
            self.words.append("".join(self.cur))
            self.cur, self.in_word = [], False


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.s = text
        self.i = 0
        self.env = env
        self.esc = escape

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.i += 1
        return ch

    # -- top level ---------------------------------------------------------------------------------------

    def process(self, stop: str = _EOF, words: _Words | None = None) -> str:
        """Up to ``stop`` (consumed) or the end; the processed text (and words, if asked)."""
        out: list[str] = []
        while self.peek() != _EOF:
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out)
            if ch == "'":
                tmp = self.single_quote()
                out.append(tmp)
                if words is not None:
                    words.add_raw(tmp)
            elif ch == '"':
                tmp = self.double_quote()
                out.append(tmp)
                if words is not None:
                    words.add_raw(tmp)
            elif ch == "$":
                tmp = self.dollar()
                out.append(tmp)
                if words is not None:
                    words.add_expanded(tmp)
            else:
                self.next()
                if ch == self.esc:
                    ch = self.next()
                    if ch == _EOF:
                        break  # a lone escape at the end is dropped
                    if words is not None:
                        words.add_raw(ch)
                elif words is not None:
                    words.add_char(ch)
                out.append(ch)
        if stop:
            raise ExpandError(f"syntax error: missing '{stop}'")
        return "".join(out)

    def single_quote(self) -> str:
        self.next()
        start = self.i
        end = self.s.find("'", start)
        if end < 0:
            raise ExpandError("unexpected end of statement while looking for matching single-quote")
        self.i = end + 1
        return self.s[start:end]

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch == _EOF:
                raise ExpandError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.esc:
                nxt = self.peek()
                if nxt == _EOF:
                    continue
                if nxt in ('"', "$", self.esc):
                    ch = self.next()
            out.append(ch)

    # -- substitutions -------------------------------------------------------------------------------------

    def name(self) -> str:
        start = self.i
        ch = self.peek()
        if ch.isdigit():
            while self.peek().isdigit():
                self.next()
            return self.s[start : self.i]
        if ch and ch in _SPECIAL_PARAMS:
            self.next()
            return ch
        while (c := self.peek()) and (c.isalnum() or c == "_"):
            self.next()
        return self.s[start : self.i]

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.lookup(name)[0]
        self.next()
        ch = self.peek()
        if ch == _EOF:
            raise ExpandError("syntax error: missing '}'")
        if ch in "{}:":
            raise ExpandError("syntax error: bad substitution")
        name = self.name()
        if not name:
            raise ExpandError("syntax error: bad substitution")
        op = self.next()
        value, is_set = self.lookup(name)
        if op == "}":
            return value
        if op == _EOF:
            raise ExpandError("syntax error: missing '}'")
        if op == ":":
            mod = self.next()
            word = self.process("}")
            if mod == "-":
                return word if value == "" else value
            if mod == "+":
                return word if value != "" else ""
            if mod == "?":
                if value == "":
                    raise ExpandError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            raise ExpandError(f"unsupported modifier ({mod}) in substitution")
        if op in "-+?":
            word = self.process("}")
            if op == "-":
                return value if is_set else word
            if op == "+":
                return word if is_set else ""
            if not is_set:
                raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if op in "#%":
            longest = self.peek() == op
            if longest:
                self.next()
            pattern = self.process("}")
            return _trim(value, pattern, prefix=op == "#", longest=longest)
        if op == "/":
            every = self.peek() == "/"
            if every:
                self.next()
            pattern = self.process("/") if "/" in self.s[self.i :] and _before_brace(self.s, self.i) else None
            if pattern is None:
                pattern, repl = self.process("}"), ""
            else:
                repl = self.process("}")
            return _replace(value, pattern, repl, every)
        raise ExpandError(f"unsupported modifier ({op}) in substitution")


def _before_brace(s: str, i: int) -> bool:
    """Whether a '/' comes before the closing '}' (``${v/pat}`` has no replacement part)."""
    slash, brace = s.find("/", i), s.find("}", i)
    return slash >= 0 and (brace < 0 or slash < brace)


def _glob_regex(pattern: str) -> str:
    import re

    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return "".join(out)


def _trim(value: str, pattern: str, *, prefix: bool, longest: bool) -> str:
    import re

    rx = re.compile(_glob_regex(pattern), re.S)
    ends = range(len(value) + 1)
    if prefix:
        order = reversed(ends) if longest else ends
        for n in order:
            if rx.fullmatch(value[:n]):
                return value[n:]
        return value
    order = ends if longest else reversed(ends)
    for n in order:
        if rx.fullmatch(value[n:]):
            return value[:n]
    return value


def _replace(value: str, pattern: str, repl: str, every: bool) -> str:
    import re

    if not pattern:
        return value
    rx = re.compile(_glob_regex(pattern), re.S)
    return rx.sub(lambda _m: repl, value, count=0 if every else 1)


def process_word(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word: quotes removed, escapes applied, variables substituted (no splitting)."""
    return _Lexer(text, env, escape).process()


def process_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Words split on unquoted whitespace (including whitespace that substitutions bring in)."""
    words = _Words()
    _Lexer(text, env, escape).process(words=words)
    words.flush()
    return words.words


def expand_heredoc(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """A here-document body with an unquoted delimiter: substitutions and escapes of ``$``, the escape
    character and newline, as the shell does; quotes stay literal."""
    lx = _Lexer(text, env, escape)
    out: list[str] = []
    while (ch := lx.peek()) != _EOF:
        if ch == "$":
            out.append(lx.dollar())
            continue
        lx.next()
        if ch == escape and lx.peek() in ("$", escape, "\n"):
            nxt = lx.next()
            if nxt != "\n":
                out.append(nxt)
            continue
        out.append(ch)
    return "".join(out)


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes (to be processed per word later)."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    in_word = False
    i = 0
    while i < len(text):
        ch = text[i]
        if not quote and ch in " \t\r\n":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            i += 1
            continue
        in_word = True
        cur.append(ch)
        if ch == escape and quote != "'" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 2
            continue
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        i += 1
    if in_word:
        words.append("".join(cur))
    return words

"""The build context: .dockerignore rules, COPY/ADD sources with Docker's wildcards, and content checksums.

.dockerignore (Docker's rules): one pattern a line; a line starting with ``#`` is a comment; lines are
trimmed and cleaned like Go's ``filepath.Clean`` (a leading ``/`` dropped); ``!`` makes an exception. ``*``
and ``?`` do not cross ``/``, ``[...]`` is a class (``^`` negates), ``\\`` escapes, ``**`` matches any number of
directories (zero too). A pattern excludes a path when it matches the path or one of its parent directories;
the last matching line decides. ``<Dockerfile>.dockerignore`` next to the Dockerfile wins over the
context's ``.dockerignore`` (BuildKit), which wins over ``.containerignore`` (Podman).

A :class:`SourceTree` is a root directory seen as the build sees it: the context (with its ignore rules)
or a stage's or image's mounted root filesystem. Paths inside are resolved with symlinks kept in scope
(``securepath``), never escaping the root. Checksums cover names, types, modes, sizes, link targets and
file contents (not times or owners, as Docker's); file digests are remembered by inode and times.
"""

from __future__ import annotations

import hashlib
import os
import stat

from kobako.errors import InvalidArgument, NotFound
from kobako.runtime.securepath import resolve as resolve_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Iterator

    from kobako.build.cache import BuildCache

IGNORE_FILES = (".dockerignore", ".containerignore")
_WILDCARDS = "*?["
_REGEX_SPECIAL = ".+()|{}$^"


class IgnorePattern:
    __slots__ = ("exclusion", "regex", "text")

    def __init__(self, text: str, exclusion: bool, regex: re.Pattern[str]) -> None:
        self.text = text
        self.exclusion = exclusion
        self.regex = regex

    def __repr__(self) -> str:
        return f"IgnorePattern({'!' if self.exclusion else ''}{self.text})"


def pattern_regex(pattern: str) -> str:
    """The regular expression for one cleaned ignore pattern (Docker's translation; ``[...]`` classes pass
    through, ``^`` negating one)."""
    import re

    out = ["^"]
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        i += 1
        if in_class:
            if ch == "]":
                in_class = False
                out.append("]")
            elif ch == "\\" and i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            elif (ch == "^" and out[-1] == "[") or ch == "-" or ch.isalnum():
                out.append(ch)
            else:
                out.append("\\" + ch)
        elif ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            in_class = True
            out.append("[")
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        elif ch in _REGEX_SPECIAL or ch == "]":
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append("$")
    return "".join(out)


def _clean(path: str) -> str:
    """Go's filepath.Clean ("" is ".", and unlike POSIX normpath a leading "//" is "/")."""
    cleaned = os.path.normpath(path) if path else "."
    return cleaned[1:] if cleaned.startswith("//") else cleaned


def parse_ignore(text: str, source: str = ".dockerignore") -> list[IgnorePattern]:
    import re

    patterns = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        if lineno == 1 and raw.startswith("\ufeff"):
            raw = raw[1:]
        if raw.startswith("#"):
            continue
        line = raw.strip()
        if not line:
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
            if not line:
                raise InvalidArgument(f'{source} line {lineno}: illegal exclusion pattern: "!"')
        line = _clean(line)
        if len(line) > 1 and line.startswith("/"):
            line = line[1:]
        try:
            regex = re.compile(pattern_regex(line), re.S)
        except re.error as exc:
            raise InvalidArgument(f"{source} line {lineno}: bad pattern {line!r}: {exc}") from None
        patterns.append(IgnorePattern(line, exclusion, regex))
    return patterns


class IgnoreMatcher:
    def __init__(self, patterns: list[IgnorePattern] | None = None) -> None:
        self.patterns = patterns or []
        self.has_exceptions = any(p.exclusion for p in self.patterns)

    def excluded(self, rel: str) -> bool:
        """Whether ``rel`` (slash-separated, relative to the context root) is left out of the context."""
        if not self.patterns or not rel:
            return False
        matched = False
        parent = rel.rpartition("/")[0]
        parents = parent.split("/") if parent else []
        for p in self.patterns:
            if p.exclusion != matched:
                continue  # an exclusion only matters once matched, a pattern only while not matched
            hit = p.regex.match(rel) is not None
            if not hit:
                for i in range(len(parents)):
                    if p.regex.match("/".join(parents[: i + 1])):
                        hit = True
                        break
            if hit:
                matched = not p.exclusion
        return matched


def load_ignore(context_dir: str, dockerfile: str | None = None) -> IgnoreMatcher:
    candidates = [dockerfile + ".dockerignore"] if dockerfile else []
    candidates += [os.path.join(context_dir, name) for name in IGNORE_FILES]
    for path in candidates:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return IgnoreMatcher(parse_ignore(f.read(), os.path.basename(path)))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return IgnoreMatcher()


def has_wildcard(path: str) -> bool:
    i = 0
    while i < len(path):
        if path[i] == "\\":
            i += 2
            continue
        if path[i] in _WILDCARDS:
            return True
        i += 1
    return False


def component_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match for one path component."""
    import re

    out, i, n = [], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1 if i < n and pattern[i] in "^]" else i)
            if end < 0:
                raise InvalidArgument(f"syntax error in pattern {pattern!r}: missing ']'")
            body = pattern[i:end].replace("\\", "\\\\").replace("[", "\\[")
            out.append("[" + body + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
    try:
        return re.compile("".join(out), re.S)
    except re.error as exc:
        raise InvalidArgument(f"syntax error in pattern {pattern!r}: {exc}") from None


class Source:
    """One COPY source: ``rel`` (its path in the tree), ``host`` (resolved host path), ``st`` (stat of the
    resolved object), ``name`` (the base name it is copied under)."""

    __slots__ = ("host", "name", "rel", "st")

    def __init__(self, rel: str, host: str, st: os.stat_result) -> None:
        self.rel = rel
        self.host = host
        self.st = st
        self.name = rel.rpartition("/")[2]

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    def __repr__(self) -> str:
        return f"Source({self.rel!r})"


class SourceTree:
    """A directory tree files are copied from; ``ignore`` applies to the build context only."""

    def __init__(self, root: str, ignore: IgnoreMatcher | None = None, what: str = "build context") -> None:
        self.root = os.path.realpath(root)
        self.ignore = ignore or IgnoreMatcher()
        self.what = what

    def _host(self, rel: str) -> str:
        return resolve_in_root(self.root, rel) if rel else self.root

    def sources(self, spec: str) -> list[Source]:
        """The objects one COPY source names: a path (symlinks followed in scope) or a wildcard pattern."""
        rel = os.path.normpath("/" + spec).lstrip("/")
        rel = "" if rel == "." else rel
        if has_wildcard(rel):
            found = self._glob(rel)
            if not found:
                raise NotFound(f"no source files were specified: {spec!r} matches nothing in the {self.what}")
            return found
        return [self._one(rel, spec)]

    def _one(self, rel: str, spec: str) -> Source:
        missing = NotFound(f"file not found in {self.what}"
                           f"{' or excluded by .dockerignore' if self.ignore.patterns else ''}: {spec}")  # fmt: skip
        if self.ignore.excluded(rel) and not (self.ignore.has_exceptions and self._has_included(rel)):
            raise missing
        try:
            host = self._host(rel)
            st = os.stat(host)
        except (OSError, InvalidArgument):
            raise missing from None
        return Source(rel, host, st)

    def _has_included(self, rel: str) -> bool:
        host = self._host(rel)
        return os.path.isdir(host) and any(True for _ in self.walk(rel, host))

    def _glob(self, rel: str) -> list[Source]:
        level: list[tuple[str, str]] = [("", self.root)]
        parts = rel.split("/")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            nxt: list[tuple[str, str]] = []
            for base_rel, base_host in level:
                if not has_wildcard(part):
                    name = part.replace("\\", "")
                    child_rel = f"{base_rel}/{name}" if base_rel else name
                    if os.path.lexists(os.path.join(base_host, name)):
                        nxt.append((child_rel, self._host(child_rel)))
                    continue
                rx = component_regex(part)
                try:
                    names = sorted(os.listdir(base_host))
                except OSError:
                    continue
                for name in names:
                    if rx.fullmatch(name):
                        child_rel = f"{base_rel}/{name}" if base_rel else name
                        if last and self.ignore.excluded(child_rel):
                            continue
                        nxt.append((child_rel, self._host(child_rel)))
            level = nxt
        out = []
        for child_rel, host in level:
            try:
                out.append(Source(child_rel, host, os.stat(host)))
            except OSError:
                continue  # a dangling symlink matched: nothing to copy
        return out

    def walk(self, rel: str, host: str) -> Iterator[tuple[str, str, os.stat_result]]:
        """Everything below the directory ``host`` (``rel`` in the tree): (path relative to it, host path,
        lstat), parents before children, names sorted; ignored entries skipped (an ignored directory is
        still searched when exception patterns may bring back something inside it)."""
        ignore = self.ignore

        def visit(sub: str, path: str) -> Iterator[tuple[str, str, os.stat_result]]:
            try:
                with os.scandir(path) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                raise InvalidArgument(f"cannot read {os.path.join(rel, sub) or '.'} in the {self.what}: "
                                      f"{exc.strerror}") from None  # fmt: skip
            for e in entries:
                child = f"{sub}/{e.name}" if sub else e.name
                st = e.stat(follow_symlinks=False)
                excluded = ignore.excluded(f"{rel}/{child}" if rel else child) if ignore.patterns else False
                if not excluded:
                    yield child, e.path, st
                if stat.S_ISDIR(st.st_mode) and (not excluded or ignore.has_exceptions):
                    yield from visit(child, e.path)

        yield from visit("", host)


def _file_digest(path: str, st: os.stat_result, cache: BuildCache | None) -> str:
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if cache is not None:
        known = cache.file_digest(path, key)
        if known:
            return known
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    if cache is not None:
        cache.remember_file_digest(path, key, digest)
    return digest


def checksum(tree: SourceTree, sources: list[Source], cache: BuildCache | None = None) -> str:
    """One digest of everything the sources would copy (names, types, modes, sizes, targets, contents)."""
    h = hashlib.sha256()

    def entry(name: str, path: str, st: os.stat_result) -> None:
        mode = st.st_mode
        h.update(f"{name}\0{stat.S_IFMT(mode):o}\0{stat.S_IMODE(mode):o}\0".encode())
        if stat.S_ISREG(mode):
            h.update(f"{st.st_size}\0{_file_digest(path, st, cache)}\0".encode())
        elif stat.S_ISLNK(mode):
            h.update(os.fsencode(os.readlink(path)) + b"\0")
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            h.update(f"{st.st_rdev}\0".encode())

    for src in sources:
        h.update(b"\1" + src.rel.encode() + b"\0")
        entry(src.name, src.host, src.st)
        if src.is_dir:
            for sub, path, st in tree.walk(src.rel, src.host):
                entry(sub, path, st)
    return "sha256:" + h.hexdigest()

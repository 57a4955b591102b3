"""Put files into a mounted root filesystem the way COPY does, never following a symlink out of it.

Destinations are resolved with ``securepath`` (symlinks in the image are followed, but inside the root);
the object at the final name is replaced, never followed. Files keep their mode and modification time,
and get the ``--chown`` owner (root by default) and the ``--chmod`` mode if given; directories made for
the destination path get the owner too. Hard links within one copy stay hard links. Directory times are
set last, after their contents.

``--chmod`` takes octal (``755``) or chmod(1)'s symbolic form (``u=rwX,go=rX``, ``+x``).
"""

from __future__ import annotations

import os
import stat

from kobako.errors import InvalidArgument
from kobako.runtime.securepath import resolve as resolve_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.build.context import IgnoreMatcher, Source, SourceTree

_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007, "a": 0o7777}


class ModeSpec:
    """A parsed ``--chmod``: ``apply(mode, is_dir)`` gives the new permission bits."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.octal: int | None = None
        self.clauses: list[tuple[str, str, str]] = []
        if text and all(c in "01234567" for c in text):
            value = int(text, 8)
            if value > 0o7777:
                raise InvalidArgument(f"invalid --chmod={text!r}: octal modes go up to 7777")
            self.octal = value
            return
        for clause in text.split(","):
            i = 0
            while i < len(clause) and clause[i] in "ugoa":
                i += 1
            who = clause[:i] or "a"
            rest = clause[i:]
            if not rest:
                raise InvalidArgument(f"invalid --chmod={text!r}: {clause!r} has no operator (+, - or =)")
            while rest:
                if rest[0] not in "+-=":
                    raise InvalidArgument(f"invalid --chmod={text!r}: bad operator in {clause!r}")
                op, j = rest[0], 1
                while j < len(rest) and rest[j] not in "+-=":
                    j += 1
                perms = rest[1:j]
                if not (all(c in "rwxXst" for c in perms) or perms in ("u", "g", "o")):
                    raise InvalidArgument(f"invalid --chmod={text!r}: bad permissions {perms!r}")
                self.clauses.append((who, op, perms))
                rest = rest[j:]

    def apply(self, mode: int, is_dir: bool) -> int:
        if self.octal is not None:
            return self.octal
        mode = stat.S_IMODE(mode)
        for who, op, perms in self.clauses:
            mask = 0
            for w in who:
                mask |= _WHO[w]
            bits = 0
            if perms in ("u", "g", "o"):
                shift = {"u": 6, "g": 3, "o": 0}[perms]
                bits = ((mode >> shift) & 7) * 0o111
            else:
                for p in perms:
                    bits |= {"r": 0o444, "w": 0o222, "x": 0o111, "s": 0o6000, "t": 0o1000}.get(p, 0)
                    if p == "X" and (is_dir or mode & 0o111):
                        bits |= 0o111
            bits &= mask
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mode = (mode & ~(mask & 0o777 | (mask & 0o7000))) | bits
        return mode


class Copier:
    """Copies into ``rootfs`` (a mounted snapshot). ``owner`` None means root; ``chmod`` None keeps modes."""

    def __init__(
        self, rootfs: str, owner: tuple[int, int] | None = None, chmod: ModeSpec | None = None
    ) -> None:
        self.rootfs = rootfs
        self.owner = owner or (0, 0)
        self.chmod = chmod
        self._dirs: dict[str, str] = {}
        self._links: dict[tuple[int, int], str] = {}
        self._dir_times: list[tuple[str, os.stat_result]] = []

    def directory(self, cpath: str) -> str:
        """Host path of container directory ``cpath``, made (``mkdir -p``, owned by the owner) if missing."""
        cpath = os.path.normpath("/" + cpath)
        known = self._dirs.get(cpath)
        if known is not None:
            return known
        from kobako.build.run import make_dirs

        make_dirs(self.rootfs, cpath, self.owner)
        host = resolve_in_root(self.rootfs, cpath)
        self._dirs[cpath] = host
        return host

    def is_dir(self, cpath: str) -> bool:
        return os.path.isdir(resolve_in_root(self.rootfs, cpath))

    def copy_source(self, tree: SourceTree, src: Source, dest: str, into: bool,
                    exclude: IgnoreMatcher | None = None) -> None:  # fmt: skip
        """One source: a directory's contents go into ``dest``; a file goes to ``dest`` or into it."""
        if src.is_dir:
            self.directory(dest)
            for rel, host, st in tree.walk(src.rel, src.host):
                if exclude is not None and exclude.excluded(rel):
                    continue
                self.place(f"{dest}/{rel}", host, st)
        else:
            target = f"{dest}/{src.name}" if into else dest
            self.place(target, src.host, src.st)

    def write_file(self, cpath: str, data: bytes, mode: int = 0o644) -> None:
        parent = self.directory(os.path.dirname(cpath))
        dst = os.path.join(parent, os.path.basename(cpath))
        self._clear(dst, cpath, False)
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fchown(fd, *self.owner)
            os.fchmod(fd, self.chmod.apply(mode, False) if self.chmod else mode)
        finally:
            os.close(fd)

    def place(self, cpath: str, host_src: str, st: os.stat_result) -> None:
        """Create ``cpath`` from the object at ``host_src`` (``st`` describes it)."""
        cpath = os.path.normpath(cpath)
        parent = self.directory(os.path.dirname(cpath))
        name = os.path.basename(cpath)
        dst = os.path.join(parent, name)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            inside = resolve_in_root(self.rootfs, cpath)
            if not os.path.isdir(inside):
                self._clear(dst, cpath, True)
                os.mkdir(dst, 0o700)
                inside = dst
            self._dirs[cpath] = inside
            self._finish(inside, st, True)
            self._dir_times.append((inside, st))
            return
        self._clear(dst, cpath, False)
        link_key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and link_key in self._links:
            os.link(self._links[link_key], dst, follow_symlinks=False)
            return
        if stat.S_ISREG(mode):
            _copy_data(host_src, dst)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(host_src), dst)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(dst, 0o600)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            os.mknod(dst, stat.S_IFMT(mode) | 0o600, st.st_rdev)
        else:
            return  # sockets are runtime objects: not copied
        self._finish(dst, st, False)
        if st.st_nlink > 1:
            self._links[link_key] = dst

    def _clear(self, dst: str, cpath: str, want_dir: bool) -> None:
        try:
            existing = os.lstat(dst)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(existing.st_mode):
            if not want_dir:
                raise InvalidArgument(f"cannot copy to {cpath}: a directory is in the way of a file")
            return
        os.unlink(dst)

    def _finish(self, path: str, st: os.stat_result, is_dir: bool) -> None:
        os.chown(path, *self.owner, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            return
        mode = stat.S_IMODE(st.st_mode)
        os.chmod(path, self.chmod.apply(mode, is_dir) if self.chmod else mode)
        if not is_dir:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    def finish(self) -> None:
        """Directory times, deepest first (their contents changed them)."""
        for path, st in reversed(self._dir_times):
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        self._dir_times = []


def _copy_data(src: str, dst: str) -> None:
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(sfd).st_size
            copied = 0
            while copied < size:
                try:
                    n = os.copy_file_range(sfd, dfd, size - copied)
                except OSError:
                    n = os.sendfile(dfd, sfd, copied, size - copied)
                if n == 0:
                    break
                copied += n
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)

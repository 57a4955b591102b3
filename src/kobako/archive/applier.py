"""The engine behind :func:`kobako.archive.tar.apply_layer`: one tar entry at a time, below a root descriptor.

Every directory is reached by ``O_NOFOLLOW`` opens from the root (cached per path while it is not replaced),
every change is an ``*at`` call that does not follow its last component, and directory modes and times are
set last. The containment rules are listed in ``tar.py``.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable

from kobako.archive import tarformat as tf
from kobako.archive.lowers import Lowers, copy_up_file, copy_xattrs
from kobako.archive.whiteout import META_PREFIX, OPAQUE, PREFIX, fd_path, is_whiteout_device
from kobako.errors import InvalidArgument, KobakoError, from_oserror

_PATH = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_CACHED_DIRS = 512


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race with other threads)."""
    with open("/proc/self/status", "rb") as f:
        return next((int(line.split()[1], 8) for line in f if line.startswith(b"Umask:")), 0o022)


class Applier:
    """One layer being applied: the entry loop, the safe parent walk, whiteouts (see ``tar.py``)."""

    allow_devices = False
    same_owner = False
    opaque_xattr = "trusted.overlay.opaque"

    def __init__(self, root_fd: int, overlay: bool, lowers: Lowers | None) -> None:
        self.root_fd = root_fd
        self.overlay = overlay
        self.lowers = lowers
        self.umask = _umask()
        self.dirs: dict[bytes, int] = {b"": root_fd}
        self.written: set[bytes] = set()  # paths this layer created (whiteouts never hide them)
        self.deferred: dict[bytes, tuple[int, int]] = {}  # dir -> (mode, mtime_ns), set once children exist
        self.name = ""

    def close(self) -> None:
        self._forget()
        os.close(self.root_fd)

    def _forget(self, under: bytes | None = None) -> None:
        """Close cached descriptors: all, or those of ``under`` and below (it is being removed)."""
        for key in list(self.dirs):
            if key and (under is None or key == under or key.startswith(under + b"/")):
                os.close(self.dirs.pop(key))

    def _xattr(self, target: int | bytes, key: str, value: bytes, *, follow: bool = True) -> None:
        """Set an xattr from the layer; one the filesystem cannot store (or, unprivileged, may not) is skipped."""
        try:
            os.setxattr(target, key, value, follow_symlinks=follow)
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP) and (
                self.same_owner or exc.errno != errno.EPERM
            ):
                raise

    def _refuse(self, why: str) -> InvalidArgument:
        return InvalidArgument(f"layer entry {self.name!r}: {why}")

    # -- the loop ----------------------------------------------------------------------------------------

    def run(self, reader: tf.TarReader) -> int:
        count = 0
        for entry in reader:
            count += 1
            if len(self.dirs) > _MAX_CACHED_DIRS:  # only between entries: no descriptor is in use
                self._forget()
            self.name = entry.display()
            try:
                self._entry(entry, reader)
            except KobakoError:
                raise
            except OSError as exc:
                raise from_oserror(exc, f"layer entry {self.name!r}") from exc
        self._finish_dirs()
        return count

    def _entry(self, e: tf.Entry, reader: tf.TarReader) -> None:
        parts = tf.name_parts(e.name, "entry")
        for key in e.xattrs:
            if key.startswith(("trusted.overlay.", "user.overlay.")):
                raise self._refuse(f"xattr {key!r} is reserved for overlayfs")
        if not parts:
            if e.type != tf.DIR:
                raise self._refuse("only a directory may name the root of the layer")
            self._dir_meta(self.root_fd, b"", e)
            return
        base = parts[-1]
        if base.startswith(PREFIX):
            self._whiteout(parts[:-1], base)
            return
        path = b"/".join(parts)
        pfd = self._parent(parts[:-1])
        kind = e.type
        if kind == tf.REG:
            self._file(pfd, base, path, e, reader)
        elif kind == tf.DIR:
            self._mkdir(pfd, base, path, e)
        elif kind == tf.SYM:
            self._create(pfd, base, path, lambda: os.symlink(e.linkname, base, dir_fd=pfd))
            self._path_meta(pfd, base, e, chmod=False)
        elif kind == tf.LNK:
            self._hardlink(pfd, base, path, e)
        elif kind in (tf.CHR, tf.BLK):
            if not self.allow_devices:
                raise self._refuse("device nodes are not allowed in this layer")
            fmt = stat.S_IFCHR if kind == tf.CHR else stat.S_IFBLK
            dev = os.makedev(e.devmajor, e.devminor)
            self._create(pfd, base, path, lambda: os.mknod(base, fmt | 0o600, dev, dir_fd=pfd))
            self._path_meta(pfd, base, e, chmod=True)
        elif kind == tf.FIFO:
            self._create(pfd, base, path, lambda: os.mkfifo(base, 0o600, dir_fd=pfd))
            self._path_meta(pfd, base, e, chmod=True)
        self.written.add(path)

    # -- parents -----------------------------------------------------------------------------------------

    def _parent(self, parts: list[bytes], *, create: bool = True) -> int:
        """Descriptor of the directory ``parts`` inside the target, never crossing a symlink."""
        key = b"/".join(parts)
        fd = self.dirs.get(key)
        if fd is not None:
            return fd
        pfd = self._parent(parts[:-1], create=create)
        comp = parts[-1]
        try:
            fd = os.open(comp, _PATH, dir_fd=pfd)
        except FileNotFoundError:
            if not create:
                raise
            self._make_parent(pfd, comp, parts)
            fd = os.open(comp, _PATH, dir_fd=pfd)
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            fd = self._not_a_dir(pfd, comp, key, create, exc)
        self.dirs[key] = fd
        return fd

    def _not_a_dir(self, pfd: int, comp: bytes, key: bytes, create: bool, exc: OSError) -> int:
        st = os.stat(comp, dir_fd=pfd, follow_symlinks=False)
        if self.overlay and create and is_whiteout_device(st):  # deleted earlier: recreate, opaque
            os.unlink(comp, dir_fd=pfd)
            os.mkdir(comp, 0o755, dir_fd=pfd)
            os.setxattr(fd_path(pfd, comp), self.opaque_xattr, b"y")
            return os.open(comp, _PATH, dir_fd=pfd)
        what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise self._refuse(f"parent {key.decode('utf-8', 'backslashreplace')!r} is {what}") from exc

    def _make_parent(self, pfd: int, comp: bytes, parts: list[bytes]) -> None:
        """Create a missing parent: plain 0755 root, or in overlay mode a copy of the lower dir's attributes."""
        lower = self.lowers.lookup(parts) if self.overlay and self.lowers else None
        if lower is None:
            os.mkdir(comp, 0o755, dir_fd=pfd)
            return
        st, lfd, lname = lower
        try:
            if not stat.S_ISDIR(st.st_mode):
                what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
                raise self._refuse(
                    f"parent {b'/'.join(parts).decode('utf-8', 'backslashreplace')!r} is {what}"
                )
            os.mkdir(comp, 0o700, dir_fd=pfd)
            if self.same_owner:
                os.chown(comp, st.st_uid, st.st_gid, dir_fd=pfd, follow_symlinks=False)
            copy_xattrs(fd_path(lfd, lname), fd_path(pfd, comp))
            self.deferred.setdefault(b"/".join(parts), (stat.S_IMODE(st.st_mode), st.st_mtime_ns))
        finally:
            os.close(lfd)

    # -- creating entries --------------------------------------------------------------------------------

    def _create(self, pfd: int, base: bytes, path: bytes, make: Callable[[], None]) -> None:
        try:
            make()
        except FileExistsError:
            self._clear(pfd, base, path)
            make()

    def _clear(self, pfd: int, base: bytes, path: bytes) -> None:
        """Remove whatever is at ``path`` (``base`` in ``pfd``) without following it."""
        st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            self._forget(path)
            shutil.rmtree(os.fsdecode(base), dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)

    def _file(self, pfd: int, base: bytes, path: bytes, e: tf.Entry, reader: tf.TarReader) -> None:
        mode = e.mode
        simple = mode & ~0o777 == 0 and mode & self.umask == 0
        create_mode = mode if simple else 0o600
        try:
            fd = os.open(base, _NEW_FILE, create_mode, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, base, path)
            fd = os.open(base, _NEW_FILE, create_mode, dir_fd=pfd)
        try:
            write = os.write
            for piece in reader.pieces():
                while piece:
                    piece = piece[write(fd, piece) :]
            if self.same_owner:
                os.fchown(fd, e.uid, e.gid)  # before chmod: chown clears setuid/setgid
            if not simple:
                os.fchmod(fd, mode)
            for key, value in e.xattrs.items():
                self._xattr(fd, key, value)
            os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
        finally:
            os.close(fd)

    def _mkdir(self, pfd: int, base: bytes, path: bytes, e: tf.Entry) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                was_whiteout = self.overlay and is_whiteout_device(st)
                self._clear(pfd, base, path)
                os.mkdir(base, 0o700, dir_fd=pfd)
                if was_whiteout:  # the name was deleted from the lowers: do not merge with them again
                    os.setxattr(fd_path(pfd, base), self.opaque_xattr, b"y")
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        old = self.dirs.get(path)
        if old is not None:
            os.close(old)
        self.dirs[path] = fd
        self._dir_meta(fd, path, e)

    def _dir_meta(self, fd: int, path: bytes, e: tf.Entry) -> None:
        if self.same_owner:
            os.chown(fd_path(fd), e.uid, e.gid)
        for key, value in e.xattrs.items():
            self._xattr(fd_path(fd), key, value)
        self.deferred[path] = (e.mode, e.mtime_ns)

    def _path_meta(self, pfd: int, base: bytes, e: tf.Entry, *, chmod: bool) -> None:
        """Owner, mode, xattrs and times of a just-created symlink or special file, never following it."""
        if self.same_owner:
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                os.chmod(fd_path(fd), e.mode)
            finally:
                os.close(fd)
        for key, value in e.xattrs.items():
            self._xattr(fd_path(pfd, base), key, value, follow=False)
        os.utime(base, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, pfd: int, base: bytes, path: bytes, e: tf.Entry) -> None:
        tparts = tf.name_parts(e.linkname, "hardlink target")
        if not tparts:
            raise self._refuse("hardlink to the layer root")
        try:
            tpfd = self._parent(tparts[:-1], create=self.overlay)
            st = os.stat(tparts[-1], dir_fd=tpfd, follow_symlinks=False)
        except FileNotFoundError:
            st = self._copy_up(tparts) if self.overlay and self.lowers else None
            if st is None:
                raise self._refuse(f"hardlink target {e.linkname!r} does not exist") from None
            tpfd = self._parent(tparts[:-1])
        if stat.S_ISDIR(st.st_mode) or (self.overlay and is_whiteout_device(st)):
            raise self._refuse(f"hardlink target {e.linkname!r} is a directory or deleted")
        tbase = tparts[-1]
        try:
            os.link(tbase, base, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileExistsError:
            if os.stat(base, dir_fd=pfd, follow_symlinks=False).st_ino == st.st_ino:
                return
            self._clear(pfd, base, path)
            os.link(tbase, base, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)

    def _copy_up(self, parts: list[bytes]) -> os.stat_result | None:
        assert self.lowers is not None
        found = self.lowers.lookup(parts)
        if found is None:
            return None
        st, lfd, lname = found
        try:
            if not stat.S_ISREG(st.st_mode):
                return st if stat.S_ISDIR(st.st_mode) else None
            copy_up_file(lfd, lname, st, self._parent(parts[:-1]), parts[-1])
        finally:
            os.close(lfd)
        return os.stat(parts[-1], dir_fd=self._parent(parts[:-1]), follow_symlinks=False)

    # -- whiteouts ---------------------------------------------------------------------------------------

    def _whiteout(self, parent: list[bytes], base: bytes) -> None:
        if base == OPAQUE:
            return self._opaque(parent)
        if base.startswith(META_PREFIX):  # other AUFS bookkeeping (.wh..wh.plnk, ...): meaningless here
            return None
        victim = base[len(PREFIX) :]
        if victim in (b"", b".", b".."):
            raise self._refuse("whiteout names no sibling")
        path = b"/".join([*parent, victim])
        if path in self.written:
            return None
        if self.overlay and self.lowers and self.lowers.lookup([*parent, victim]) is None:
            return None  # nothing below to hide
        try:
            pfd = self._parent(parent, create=self.overlay)
        except FileNotFoundError:
            return None
        try:
            self._clear(pfd, victim, path)
        except FileNotFoundError:
            pass
        if self.overlay:
            os.mknod(victim, stat.S_IFCHR | 0o600, 0, dir_fd=pfd)
        return None

    def _opaque(self, parent: list[bytes]) -> None:
        if self.overlay:
            os.setxattr(fd_path(self._parent(parent)), self.opaque_xattr, b"y")
            return
        try:
            fd = self._parent(parent, create=False)
        except FileNotFoundError:
            return
        self._prune(fd, b"/".join(parent))

    def _prune(self, dfd: int, path: bytes) -> None:
        """Plain mode opaque dir: remove what the lowers left below ``path``, keep what this layer wrote."""
        prefix = path + b"/" if path else b""
        with os.scandir(os.open(fd_path(dfd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)) as it:
            children = [(os.fsencode(c.name), c.is_dir(follow_symlinks=False)) for c in it]
        for name, is_dir in children:
            child = prefix + name
            if child not in self.written:
                self._clear(dfd, name, child)
            elif is_dir:
                self._prune(self._parent(child.split(b"/")), child)

    def _finish_dirs(self) -> None:
        """Directory modes and times last: creating children changed the times, and modes may forbid writes."""
        for path, (mode, mtime_ns) in self.deferred.items():
            if len(self.dirs) > _MAX_CACHED_DIRS:
                self._forget()
            try:
                fd = self._parent(path.split(b"/"), create=False) if path else self.root_fd
            except (FileNotFoundError, InvalidArgument):
                continue  # removed or replaced later in the layer
            os.chmod(fd_path(fd), mode)
            os.utime(fd_path(fd), ns=(mtime_ns, mtime_ns))

"""Read-only look-ups in the lower layers of an overlay, for applying a layer straight into an upper dir.

Lower dirs are walked component by component with ``O_NOFOLLOW`` like the target, so a symlink in a lower
layer can never lead a look-up (or a copy-up) out of the lower tree. Whiteouts and opaque directories in the
lowers are honoured, so the answer is what the merged overlay would show.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence

from kobako.archive.whiteout import fd_path, is_opaque, is_whiteout_device

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Lowers:
    """The lower dirs of an overlay, topmost first."""

    def __init__(self, dirs: Sequence[str | bytes], *, userxattr: bool = False) -> None:
        self.dirs = [os.fsencode(d) for d in dirs]
        self.userxattr = userxattr

    def lookup(self, parts: Sequence[bytes]) -> tuple[os.stat_result, int, bytes] | None:
        """``(lstat, parent_fd, name)`` of the merged entry at ``parts``, or None if hidden or absent.

        The caller closes ``parent_fd``. An empty ``parts`` is never looked up.
        """
        for top in self.dirs:
            found, stop = self._lookup_in(top, parts)
            if found is not None:
                return found
            if stop:
                return None
        return None

    def _lookup_in(
        self, top: bytes, parts: Sequence[bytes]
    ) -> tuple[tuple[os.stat_result, int, bytes] | None, bool]:
        try:
            fd = os.open(top, _DIR_FLAGS)
        except OSError:
            return None, False
        stop = is_opaque(fd, userxattr=self.userxattr) and bool(parts)
        try:
            for comp in parts[:-1]:
                try:
                    st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    return None, stop
                if not stat.S_ISDIR(st.st_mode):  # a file, symlink or whiteout hides deeper lowers too
                    return None, True
                nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
                stop = stop or is_opaque(fd, userxattr=self.userxattr)
            try:
                st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None, stop
            if is_whiteout_device(st):
                return None, True
            found = (st, fd, parts[-1])
            fd = -1
            return found, True
        finally:
            if fd >= 0:
                os.close(fd)


def copy_xattrs(src: bytes, dst: bytes, *, follow: bool = True) -> None:
    """Copy extended attributes between two paths, skipping overlay's own bookkeeping."""
    try:
        names = os.listxattr(src, follow_symlinks=follow)
    except OSError:
        return
    for name in names:
        if name.startswith(("trusted.overlay.", "user.overlay.")):
            continue
        with contextlib.suppress(OSError):
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=follow), follow_symlinks=follow)


def copy_up_file(src_dir: int, name: bytes, st: os.stat_result, dst_dir: int, dst_name: bytes) -> None:
    """Copy a regular file (data, owner, mode, xattrs, times) from a lower layer into the upper dir."""
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
    try:
        dst = os.open(
            dst_name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dst_dir,
        )
        try:
            copy_data(src, dst, st.st_size)
            os.fchown(dst, st.st_uid, st.st_gid)
            os.fchmod(dst, stat.S_IMODE(st.st_mode))
            copy_xattrs(fd_path(src), fd_path(dst))
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(dst)
    finally:
        os.close(src)


def copy_data(src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes in the kernel (copy_file_range, which may reflink), falling back to read/write."""
    left = size
    try:
        while left > 0:
            n = os.copy_file_range(src, dst, min(left, 1 << 30))
            if n == 0:
                break
            left -= n
        return
    except OSError:
        os.lseek(src, size - left, os.SEEK_SET)
        os.lseek(dst, size - left, os.SEEK_SET)
    while left > 0:
        chunk = os.read(src, min(left, 1 << 20))
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
        left -= len(chunk)

"""Copy a directory tree exactly, for the copying (native) snapshotter.

Everything is kept: owners, modes (setuid included), extended attributes (``security.capability``,
``trusted.*``), nanosecond times, symlinks (copied, never followed), device nodes, fifos, sockets, and hardlinks
*within* the tree. Nothing is hardlinked to the source, so changing the copy can never change the parent; the
data goes through copy_file_range, which filesystems with reflinks (btrfs, XFS) turn into a shared extent.
"""

from __future__ import annotations

import os
import stat

from kobako.archive.lowers import copy_data, copy_xattrs

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(src: str | bytes, dst: str | bytes) -> None:
    """Copy the contents of directory ``src`` into the existing empty directory ``dst``."""
    src_b, dst_b = os.fsencode(src), os.fsencode(dst)
    links: dict[tuple[int, int], bytes] = {}
    dirs: list[tuple[bytes, os.stat_result]] = []
    _copy_dir(src_b, dst_b, links, dirs)
    _copy_meta(src_b, dst_b, os.stat(src_b), is_dir=True)
    for path, st in reversed(dirs):  # children first: their creation changed their parent's times
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_dir(src: bytes, dst: bytes, links: dict[tuple[int, int], bytes], dirs: list) -> None:
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        s = os.path.join(src, entry.name)
        d = os.path.join(dst, entry.name)
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(d, 0o700)
            _copy_dir(s, d, links, dirs)
            _copy_meta(s, d, st, is_dir=True)
            dirs.append((d, st))
            continue
        if st.st_nlink > 1:
            first = links.get((st.st_dev, st.st_ino))
            if first is not None:
                os.link(first, d, follow_symlinks=False)
                continue
            links[(st.st_dev, st.st_ino)] = d
        if stat.S_ISREG(mode):
            _copy_file(s, d, st)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
            os.chown(d, st.st_uid, st.st_gid, follow_symlinks=False)
            copy_xattrs(s, d, follow=False)
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        else:  # character/block devices, fifos, sockets
            os.mknod(d, stat.S_IFMT(mode) | 0o600, st.st_rdev)
            _copy_meta(s, d, st, is_dir=False)


def _copy_file(src: bytes, dst: bytes, st: os.stat_result) -> None:
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dfd = os.open(dst, _NEW_FILE, 0o600)
        try:
            copy_data(sfd, dfd, st.st_size)
            os.fchown(dfd, st.st_uid, st.st_gid)  # before chmod: chown clears setuid/setgid
            os.fchmod(dfd, stat.S_IMODE(st.st_mode))
            copy_xattrs(b"/proc/self/fd/%d" % sfd, b"/proc/self/fd/%d" % dfd)  # after chown: it drops caps
            os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _copy_meta(src: bytes, dst: bytes, st: os.stat_result, *, is_dir: bool) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    copy_xattrs(src, dst)
    if not is_dir:
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

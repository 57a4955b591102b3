"""Fill an empty volume with what the image has at the mount path (docker's "copy existing contents").

The source is the container's rootfs, which an image controls: every step works on directory file
descriptors with ``O_NOFOLLOW``, so no symlink in the image can make the copy read or write outside the
source and destination trees. Owners, modes, timestamps, extended attributes, symlinks, hard links and
FIFOs are kept; device nodes and sockets are skipped (a volume outlives the image's intent for them).
"""

from __future__ import annotations

import os
import stat

from kobako.errors import InvalidArgument

MAX_DEPTH = 256
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(source: str, dest: str) -> None:
    """Copy the contents of directory ``source`` into the existing directory ``dest``, and its metadata."""
    try:
        src_fd = os.open(source, _DIR_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing at that path in the image (or a symlink/file): nothing to copy
    try:
        dst_fd = os.open(dest, _DIR_FLAGS)
        try:
            links: dict[tuple[int, int], tuple[int, str]] = {}
            try:
                _copy_dir(src_fd, dst_fd, links, 0)
            finally:
                for fd, _name in links.values():
                    os.close(fd)
            _copy_meta(src_fd, dst_fd, os.fstat(src_fd))
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def is_empty(path: str) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def _copy_dir(src_fd: int, dst_fd: int, links: dict[tuple[int, int], tuple[int, str]], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"image directory tree deeper than {MAX_DEPTH} levels: refusing to copy it")
    with os.scandir(src_fd) as it:
        entries = list(it)
    for entry in entries:
        name = entry.name
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst_fd)
            sub_src = os.open(name, _DIR_FLAGS, dir_fd=src_fd)
            try:
                sub_dst = os.open(name, _DIR_FLAGS, dir_fd=dst_fd)
                try:
                    _copy_dir(sub_src, sub_dst, links, depth + 1)
                    _copy_meta(sub_src, sub_dst, st)  # after the contents: a read-only dir stays fillable
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                first_dir, first_name = links[key]
                os.link(first_name, name, src_dir_fd=first_dir, dst_dir_fd=dst_fd, follow_symlinks=False)
                continue
            _copy_file(src_fd, dst_fd, name, st)
            if st.st_nlink > 1:
                # Keep an fd to the directory of the first copy (dup: the caller closes its own).
                links[key] = (os.dup(dst_fd), name)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(name, 0o600, dir_fd=dst_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst_fd)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)
        # character and block devices, sockets: skipped on purpose


def _copy_file(src_fd: int, dst_fd: int, name: str, st: os.stat_result) -> None:
    fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_fd)
    try:
        fout = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst_fd
        )
        try:
            _copy_data(fin, fout, st.st_size)
            _copy_meta(fin, fout, st)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_data(fin: int, fout: int, size: int) -> None:
    """In-kernel copy (copy_file_range, then sendfile); a plain read/write loop as the last resort."""
    remaining = size
    try:
        while remaining > 0:
            n = os.copy_file_range(fin, fout, min(remaining, 1 << 30))
            if n == 0:
                break
            remaining -= n
        return
    except OSError:
        os.lseek(fin, size - remaining, os.SEEK_SET)
        os.lseek(fout, size - remaining, os.SEEK_SET)
    while True:
        chunk = os.read(fin, 1 << 20)
        if not chunk:
            return
        os.write(fout, chunk)


def _copy_meta(src: int, dst: int, st: os.stat_result) -> None:
    """Owner, then mode (chown clears setuid bits), extended attributes, timestamps: all by fd."""
    os.fchown(dst, st.st_uid, st.st_gid)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    try:
        for attr in os.listxattr(src):
            try:
                os.setxattr(dst, attr, os.getxattr(src, attr))
            except OSError:
                pass  # e.g. security.selinux on a host without it: the copy is still right
    except OSError:
        pass  # the filesystem has no xattrs
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))

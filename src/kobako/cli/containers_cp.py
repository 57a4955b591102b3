"""`kobako cp`: copy between the host and a container through its rootfs mount.

The rootfs is untrusted: every container path is resolved with ``kobako.runtime.securepath`` (symlinks
and ``..`` stay inside the rootfs, as under chroot), and files are created without following a final
symlink. A stopped container's rootfs is mounted for the copy and unmounted after it. Paths inside
volumes are not reached (they are mounted only in the container's own mount namespace).
"""

from __future__ import annotations

import os
import shutil
import stat

from kobako.errors import InvalidArgument, NotFound
from kobako.runtime import securepath


def _split(arg: str) -> tuple[str, str] | None:
    """``name:/path`` → (name, path); host paths (absolute, ./relative, no colon) → None."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None
    ref, _, path = arg.partition(":")
    return ref, path or "/"


def cmd_cp(argv: list[str]) -> int:
    args = [a for a in argv if a not in ("-a", "--archive", "-L", "--follow-link", "-q", "--quiet")]
    if len(args) != 2 or "--help" in args:
        print("usage: kobako cp CONTAINER:SRC_PATH DEST_PATH\n       kobako cp SRC_PATH CONTAINER:DEST_PATH")
        return 0 if "--help" in args else 125
    src, dst = _split(args[0]), _split(args[1])
    if (src is None) == (dst is None):
        raise InvalidArgument("copying between containers or between host paths is not supported: "
                              "exactly one of SRC and DEST must be CONTAINER:PATH")  # fmt: skip
    if "-" in args:
        raise InvalidArgument("tar streams on stdin/stdout ('-') are not supported yet")
    from kobako.engine import service
    from kobako.engine.containers import ContainerStore

    store = ContainerStore()
    ref = (src or dst)[0]  # type: ignore[index]
    record = store.get(ref)
    rootfs = store.rootfs(record.id)
    with store.lock(record.id):
        was_mounted = _mounted(rootfs)
        service.mount_rootfs(store, record)
        try:
            if src is not None:
                copy_out(rootfs, src[1], args[1])
            else:
                copy_in(rootfs, args[0], dst[1])  # type: ignore[index]
        finally:
            if not was_mounted:
                from kobako.engine import tasks

                if not tasks.is_active(store, record.id):
                    service.unmount_rootfs(store, record.id)
    return 0


def _mounted(path: str) -> bool:
    from kobako.mount import mounted_under

    return bool(mounted_under(path)) if os.path.isdir(path) else False


def copy_out(rootfs: str, ctr_path: str, host_dest: str) -> None:
    source = securepath.resolve(rootfs, ctr_path)
    if not os.path.lexists(source):
        raise NotFound(f"could not find the file {ctr_path} in the container")
    contents_only = ctr_path.endswith("/.")
    if os.path.isdir(host_dest) and not contents_only:
        host_dest = os.path.join(host_dest, os.path.basename(ctr_path.rstrip("/")) or "root")
    if os.path.isdir(source) and not os.path.islink(source):
        shutil.copytree(source, host_dest, symlinks=True, dirs_exist_ok=True)
    else:
        if not os.path.isdir(os.path.dirname(os.path.abspath(host_dest))):
            raise NotFound(f"destination directory {os.path.dirname(host_dest)!r} does not exist")
        shutil.copy2(source, host_dest, follow_symlinks=False)


def copy_in(rootfs: str, host_src: str, ctr_dest: str) -> None:
    if not os.path.lexists(host_src):
        raise NotFound(f"could not find the file {host_src} on the host")
    dest_host = securepath.resolve(rootfs, ctr_dest)
    contents_only = host_src.endswith("/.")
    if os.path.isdir(dest_host):
        if contents_only and os.path.isdir(host_src):
            for name in os.listdir(host_src):
                _put(rootfs, os.path.join(host_src, name), _join(ctr_dest, name))
            return
        ctr_dest = _join(ctr_dest, os.path.basename(os.path.normpath(host_src)))
    elif not os.path.isdir(os.path.dirname(dest_host)):
        raise NotFound(f"destination directory {os.path.dirname(ctr_dest)!r} does not exist in the container")
    _put(rootfs, host_src, ctr_dest)


def _join(ctr_dir: str, name: str) -> str:
    return ctr_dir.rstrip("/") + "/" + name


def _put(rootfs: str, src: str, ctr_path: str) -> None:
    """Create ``ctr_path`` in the rootfs from host ``src``, resolving each level inside the rootfs."""
    target = securepath.resolve(rootfs, ctr_path)
    info = os.lstat(src)
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        if os.path.lexists(target) and not os.path.isdir(target):
            raise InvalidArgument(f"cannot overwrite non-directory {ctr_path!r} with a directory")
        os.makedirs(target, mode, exist_ok=True)
        for name in os.listdir(src):
            _put(rootfs, os.path.join(src, name), _join(ctr_path, name))
        return
    if os.path.isdir(target) and not os.path.islink(target):
        raise InvalidArgument(f"cannot overwrite directory {ctr_path!r} with a file")
    if os.path.lexists(target):
        os.unlink(target)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src), target)
        return
    if not stat.S_ISREG(info.st_mode):
        raise InvalidArgument(f"{src!r} is not a regular file, directory or symlink")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with open(src, "rb") as f:
            while chunk := f.read(1 << 20):
                os.write(fd, chunk)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)

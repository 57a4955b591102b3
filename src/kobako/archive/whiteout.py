"""Whiteouts in their two spellings: OCI layer entries and overlayfs upper-dir objects.

OCI (image-spec ``layer.md``): an empty file ``.wh.NAME`` deletes NAME from the lower layers; ``.wh..wh..opq``
in a directory hides everything the lower layers put in it. overlayfs: a 0/0 character device named NAME is
a whiteout; a directory with the xattr ``trusted.overlay.opaque=y`` (``user.overlay.opaque`` for
unprivileged ``userxattr`` mounts) is opaque.
"""

from __future__ import annotations

import os
import stat

PREFIX = b".wh."
META_PREFIX = b".wh..wh."
OPAQUE = b".wh..wh..opq"


def overlay_xattr(name: str, *, userxattr: bool = False) -> str:
    return ("user.overlay." if userxattr else "trusted.overlay.") + name


def is_whiteout_device(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def fd_path(fd: int, name: bytes | None = None) -> bytes:
    """A path naming ``fd`` (or ``name`` inside directory ``fd``) through /proc, usable even for O_PATH fds."""
    base = b"/proc/self/fd/%d" % fd
    return base if name is None else base + b"/" + name


def is_opaque(dir_fd: int, *, userxattr: bool = False) -> bool:
    try:
        return os.getxattr(fd_path(dir_fd), overlay_xattr("opaque", userxattr=userxattr)) == b"y"
    except OSError:
        return False

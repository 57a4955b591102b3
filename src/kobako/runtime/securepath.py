"""Resolve a container path inside a rootfs as the container would see it.

Symlinks in the rootfs are untrusted: an absolute link target, or ``..`` climbing past the top, must stay
inside the rootfs (it is treated as the root, like chroot would). Used for every mount destination so that a
hostile image cannot make the runtime mount over host paths.
"""

from __future__ import annotations

import os

from kobako.errors import InvalidArgument

_MAX_LINKS = 255


def resolve(root: str, path: str) -> str:
    """Return the host path of ``path`` inside ``root`` with every symlink resolved within ``root``."""
    root = root.rstrip("/") or "/"
    pending = [p for p in path.split("/") if p and p != "."]
    pending.reverse()
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root + "/" + "/".join([*resolved, part])
        try:
            target = os.readlink(candidate)
        except OSError:  # not a link, or does not exist yet: both are fine
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise InvalidArgument(f"too many levels of symbolic links resolving {path!r} in {root}")
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p and p != "."]
        pending.extend(reversed(parts))
    return root + "/" + "/".join(resolved) if resolved else root

"""``--user`` / image ``User`` → uid, gid, supplementary gids and home, from the image's own files.

The rootfs is untrusted: /etc/passwd and /etc/group are found with ``securepath`` (symlinks resolved
inside the rootfs, never out of it), opened without following a final symlink and without blocking on a
FIFO, must be regular files, and are read up to a size bound. Semantics follow docker and runc:

- ``""`` is root; ``name`` must exist in passwd; a numeric uid need not (gid 0, home "/" then);
- ``user:group`` takes the group by name (must exist in group) or number (need not);
- supplementary groups are those listing the user as a member, only when no group was given.
"""

from __future__ import annotations

import os
import stat

from kobako.errors import InvalidArgument, NotFound
from kobako.runtime import securepath

MAX_FILE = 4 << 20  # a real passwd/group file is kilobytes; more is a hostile image
MAX_ID = (1 << 31) - 1


class ExecUser:
    def __init__(self, uid: int, gid: int, additional_gids: list[int], home: str, name: str = "") -> None:
        self.uid = uid
        self.gid = gid
        self.additional_gids = additional_gids
        self.home = home
        self.name = name

    def __repr__(self) -> str:
        return f"ExecUser(uid={self.uid}, gid={self.gid}, groups={self.additional_gids}, home={self.home!r})"


def read_rootfs_file(rootfs: str, path: str, limit: int = MAX_FILE) -> str | None:
    """Text of ``path`` inside ``rootfs`` (None if missing); refuses non-regular files and oversized ones."""
    host = securepath.resolve(rootfs, path)
    try:
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path} in the image: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidArgument(f"{path} in the image is not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise InvalidArgument(f"{path} in the image is larger than {limit >> 20} MiB")
    return b"".join(chunks).decode("utf-8", "replace")


def _records(text: str | None, fields: int) -> list[list[str]]:
    """Colon-separated records; comments, NIS (+/-) lines and short lines are skipped, as libc does."""
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line[0] in "#+-":
            continue
        parts = line.split(":")
        if len(parts) >= fields and parts[0]:
            out.append(parts)
    return out


def _number(text: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    if value > MAX_ID:
        raise InvalidArgument(f"uids and gids must be in range 0-{MAX_ID}, got {value}")
    return value


class _Passwd:
    def __init__(self, parts: list[str]) -> None:
        self.name = parts[0]
        self.uid = _number(parts[2])
        self.gid = _number(parts[3])
        self.home = parts[5] if len(parts) > 5 and parts[5] else "/"


def resolve(rootfs: str, user: str, group_add: list[str] | None = None) -> ExecUser:
    """Resolve ``user`` (name, uid, name:group, uid:gid) against ``rootfs``; ``group_add`` adds groups."""
    user_part, sep, group_part = user.partition(":")
    if sep and not group_part:
        raise InvalidArgument(f"invalid user {user!r}: empty group")
    passwd = [_Passwd(p) for p in _records(read_rootfs_file(rootfs, "/etc/passwd"), 4)]
    groups = _records(read_rootfs_file(rootfs, "/etc/group"), 3)

    uid = _number(user_part) if user_part else 0
    entry = None
    if uid is None:
        entry = next((p for p in passwd if p.name == user_part), None)
        if entry is None or entry.uid is None:
            raise NotFound(f"unable to find user {user_part}: no matching entries in passwd file")
        uid = entry.uid
    else:
        entry = next((p for p in passwd if p.uid == uid), None)
    gid = entry.gid if entry is not None and entry.gid is not None else 0
    home = entry.home if entry is not None else "/"
    name = entry.name if entry is not None else ""

    extra: list[int] = []
    if sep:
        gid = _group_id(group_part, groups)
    elif name:
        # Supplementary groups only in the implicit form, as runc: an explicit group replaces them.
        for parts in groups:
            members = [m.strip() for m in parts[3].split(",")] if len(parts) > 3 else []
            number = _number(parts[2])
            if name in members and number is not None and number not in extra:
                extra.append(number)
    for g in group_add or []:
        number = _group_id(g, groups)
        if number not in extra:
            extra.append(number)
    return ExecUser(uid, gid, extra, home, name)


def _group_id(group: str, groups: list[list[str]]) -> int:
    number = _number(group)
    if number is not None:
        return number
    for parts in groups:
        if parts[0] == group and _number(parts[2]) is not None:
            return int(parts[2])
    raise NotFound(f"unable to find group {group}: no matching entries in group file")

"""Mount descriptions, the currency between snapshotters and whoever mounts: ``Mount(type, source, target, options)``.

Snapshotters return lists of :class:`Mount` and never mount (DESIGN.md, example 6); the engine, the image
unpacker and the tests call :func:`mount_all` / :func:`unmount_all`, which use mount(2)/umount2(2) directly via
``kobako.libc`` (no ``mount`` program, no shell, no ctypes import).

mount(2) copies at most one page of option data, and an overlay with many layers easily needs more. Then the
overlay's directories are rewritten relative to their longest common parent and the mount is made from inside
it (a chdir, held under a lock and undone at once); if even that does not fit, InvalidArgument says so.
"""

from __future__ import annotations

import errno
import os

from kobako.errors import Internal, InvalidArgument, KobakoError, from_oserror

TYPE_CHECKING = False  # typing, dataclasses and threading cost start-up time
if TYPE_CHECKING:
    import threading
    from collections.abc import Iterable, Sequence

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS = 1, 2, 4, 8, 16
MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC, MS_NOATIME, MS_NODIRATIME = 32, 64, 128, 1024, 2048
MS_BIND, MS_REC, MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = (
    4096,
    16384,
    1 << 17,
    1 << 18,
    1 << 19,
    1 << 20,
)
MS_RELATIME, MS_STRICTATIME, MS_LAZYTIME = 1 << 21, 1 << 24, 1 << 25
MNT_FORCE, MNT_DETACH = 1, 2

# option -> (flags to clear, flags to set)
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (0, MS_RDONLY), "rw": (MS_RDONLY, 0),
    "nosuid": (0, MS_NOSUID), "suid": (MS_NOSUID, 0),
    "nodev": (0, MS_NODEV), "dev": (MS_NODEV, 0),
    "noexec": (0, MS_NOEXEC), "exec": (MS_NOEXEC, 0),
    "sync": (0, MS_SYNCHRONOUS), "async": (MS_SYNCHRONOUS, 0),
    "dirsync": (0, MS_DIRSYNC), "remount": (0, MS_REMOUNT),
    "mand": (0, MS_MANDLOCK), "nomand": (MS_MANDLOCK, 0),
    "noatime": (0, MS_NOATIME), "atime": (MS_NOATIME, 0),
    "nodiratime": (0, MS_NODIRATIME), "diratime": (MS_NODIRATIME, 0),
    "relatime": (0, MS_RELATIME), "norelatime": (MS_RELATIME, 0),
    "strictatime": (0, MS_STRICTATIME), "lazytime": (0, MS_LAZYTIME),
    "bind": (0, MS_BIND), "rbind": (0, MS_BIND | MS_REC),
    "defaults": (0, 0),
}  # fmt: skip
_PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}  # fmt: skip
_OVERLAY_DIR_KEYS = ("lowerdir", "upperdir", "workdir")
_cwd_lock: threading.Lock | None = None  # made on first use: threading costs start-up time


class Mount:
    """One mount: ``target`` is relative to the root given to :func:`mount_all` ("" is the root itself)."""

    __slots__ = ("options", "source", "target", "type")

    def __init__(self, type: str, source: str, target: str = "", options: list[str] | None = None) -> None:
        self.type = type
        self.source = source
        self.target = target
        self.options = list(options) if options is not None else []

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mount):
            return NotImplemented
        return (self.type, self.source, self.target, self.options) == (
            other.type, other.source, other.target, other.options)  # fmt: skip

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return f"Mount(type={self.type!r}, source={self.source!r}, target={self.target!r}, options={self.options!r})"

    def option(self, key: str) -> str | None:
        """Value of a ``key=value`` option, or None."""
        prefix = key + "="
        for opt in self.options:
            if opt.startswith(prefix):
                return opt[len(prefix) :]
        return None

    @property
    def readonly(self) -> bool:
        return "ro" in self.options

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "source": self.source,
            "target": self.target,
            "options": list(self.options),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Mount:
        opts = data.get("options") or []
        if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
            raise InvalidArgument("mount options must be a list of strings")
        return cls(str(data["type"]), str(data.get("source", "")), str(data.get("target", "")), list(opts))


def parse_options(options: Iterable[str]) -> tuple[int, int, str]:
    """Split options into (mount flags, propagation flags, filesystem data string)."""
    flags = propagation = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            clear, set_ = _FLAGS[opt]
            flags = (flags & ~clear) | set_
        elif opt in _PROPAGATION:
            propagation |= _PROPAGATION[opt]
        else:
            data.append(opt)
    return flags, propagation, ",".join(data)


def _call(name: str, *args: object) -> None:
    from kobako import libc

    if name == "mount":  # mountflags is an unsigned long
        args = (*args[:3], libc.ulong(args[3]), args[4])  # type: ignore[arg-type]
    libc.call(name, *args)


def _enc(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(m: Mount, target: str) -> None:
    """Mount one description at ``target`` (an absolute host path)."""
    flags, propagation, data = parse_options(m.options)
    what = f"mounting {m.type} {m.source!r} on {target!r}"
    try:
        if flags & MS_BIND or m.type in ("bind", "rbind"):
            if m.type == "rbind":
                flags |= MS_REC
            _call("mount", _enc(m.source), _enc(target), None, MS_BIND | (flags & MS_REC), None)
            if flags & ~(MS_BIND | MS_REC):  # bind ignores other flags: apply them with a remount
                _call("mount", None, _enc(target), None, (flags & ~MS_REC) | MS_REMOUNT | MS_BIND, None)
        elif m.type == "overlay" and len(data.encode()) >= os.sysconf("SC_PAGESIZE"):
            _mount_long_overlay(m, target, flags, data)
        else:
            _call("mount", _enc(m.source), _enc(target), _enc(m.type), flags, _enc(data) if data else None)
        if propagation:
            _call("mount", None, _enc(target), None, propagation, None)
    except OSError as exc:
        raise from_oserror(exc, what) from exc


def _mount_long_overlay(m: Mount, target: str, flags: int, data: str) -> None:
    opts = [o for o in data.split(",") if o]
    dirs = []
    for opt in opts:
        key, _, value = opt.partition("=")
        if key in _OVERLAY_DIR_KEYS:
            dirs.extend(value.split(":"))
    if not dirs or not all(d.startswith("/") for d in dirs):
        raise InvalidArgument(f"overlay options for {target!r} exceed a page and cannot be shortened")
    common = os.path.commonpath(dirs)
    short = []
    for opt in opts:
        key, _, value = opt.partition("=")
        if key in _OVERLAY_DIR_KEYS:
            value = ":".join(os.path.relpath(d, common) for d in value.split(":"))
            opt = f"{key}={value}"
        short.append(opt)
    short_data = ",".join(short)
    if len(short_data.encode()) >= os.sysconf("SC_PAGESIZE"):
        raise InvalidArgument(
            f"overlay on {target!r}: {len(dirs)} directories need {len(short_data)} bytes of options even "
            f"relative to {common!r}; the kernel takes one page ({os.sysconf('SC_PAGESIZE')}): too many layers"
        )
    global _cwd_lock
    if _cwd_lock is None:
        import threading

        _cwd_lock = threading.Lock()
    with _cwd_lock:
        saved = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(common)
            _call(
                "mount", _enc(m.source), _enc(os.path.abspath(target)), b"overlay", flags, short_data.encode()
            )
        finally:
            os.fchdir(saved)
            os.close(saved)


def mount_all(mounts: Sequence[Mount], target_root: str | os.PathLike[str]) -> None:
    """Mount each description at ``target_root``/``m.target`` in order; undo them all if one fails."""
    root = os.path.abspath(os.fspath(target_root))
    done: list[str] = []
    try:
        for m in mounts:
            target = os.path.join(root, m.target.lstrip("/")) if m.target else root
            mount(m, target)
            done.append(target)
    except KobakoError as err:
        for target in reversed(done):
            try:
                unmount(target, MNT_DETACH)
            except KobakoError as cleanup:
                err.add_cleanup_error(cleanup)
        raise


def unmount(target: str | os.PathLike[str], flags: int = 0) -> None:
    try:
        _call("umount2", os.fsencode(target), flags)
    except OSError as exc:
        raise from_oserror(exc, f"unmounting {os.fspath(target)!r}") from exc


def mounted_under(target: str | os.PathLike[str]) -> list[str]:
    """Mount points at or below ``target``, in the order they were mounted."""
    root = os.path.realpath(os.fspath(target))
    found = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            point = _unescape(line.split(b" ")[4])
            if point == root or point.startswith(root.rstrip("/") + "/"):
                found.append(point)
    return found


def unmount_all(target: str | os.PathLike[str], *, detach: bool = False) -> None:
    """Unmount everything mounted at or below ``target``, the latest first (stacked mounts included)."""
    # The usual case is one mount right at ``target`` (a container's rootfs): try it before reading
    # mountinfo. It fails harmlessly when nothing is mounted there (EINVAL) or something is mounted below
    # (EBUSY, unless detaching); the loop then finds what is left, latest first.
    try:
        _call("umount2", os.fsencode(target), MNT_DETACH if detach else 0)
    except OSError:
        pass
    for _ in range(1000):
        points = mounted_under(target)
        if not points:
            return
        point = points[-1]
        try:
            _call("umount2", os.fsencode(point), MNT_DETACH if detach else 0)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # raced with someone else's unmount
                continue
            if exc.errno == errno.EBUSY and not detach:
                try:
                    _call("umount2", os.fsencode(point), MNT_DETACH)
                    continue
                except OSError:
                    pass
            raise from_oserror(exc, f"unmounting {point!r}") from exc
    raise Internal(f"could not unmount everything under {os.fspath(target)!r}")


def _unescape(field_: bytes) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out = bytearray()
    i = 0
    while i < len(field_):
        if field_[i] == 0x5C and i + 3 < len(field_) + 1 and field_[i + 1 : i + 4].isdigit():
            out.append(int(field_[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field_[i])
            i += 1
    return os.fsdecode(bytes(out))

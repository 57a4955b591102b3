"""Inside the container's mount namespace: mounts, /dev, pivot_root, masked and read-only paths.

Every destination is resolved inside the rootfs (``securepath``) so image symlinks cannot redirect a mount
onto the host. Runs in the container init before pivot_root (``prepare``) and after it (``finish``).
"""

from __future__ import annotations

import os
import stat

from kobako.runtime import securepath
from kobako.runtime import syscalls as sc
from kobako.runtime.devices import STANDARD as _DEFAULT_DEVICES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# option -> (clear?, flag); "clear" options remove the flag (e.g. "rw" clears MS_RDONLY).
_FLAG_OPTIONS = {
    "ro": (False, sc.MS_RDONLY),
    "rw": (True, sc.MS_RDONLY),
    "nosuid": (False, sc.MS_NOSUID),
    "suid": (True, sc.MS_NOSUID),
    "nodev": (False, sc.MS_NODEV),
    "dev": (True, sc.MS_NODEV),
    "noexec": (False, sc.MS_NOEXEC),
    "exec": (True, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS),
    "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC),
    "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK),
    "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME),
    "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME),
    "nodiratime": (False, sc.MS_NODIRATIME),
    "bind": (False, sc.MS_BIND),
    "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "relatime": (False, sc.MS_RELATIME),
    "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME),
    "nostrictatime": (True, sc.MS_STRICTATIME),
    "lazytime": (False, sc.MS_LAZYTIME),
    "nolazytime": (True, sc.MS_LAZYTIME),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW),
    "symfollow": (True, sc.MS_NOSYMFOLLOW),
}
_PROPAGATION = {
    "private": sc.MS_PRIVATE,
    "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE,
    "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# Options the kernel would misread as filesystem data; they only matter to other tools.
_IGNORED = frozenset(("defaults", "tmpcopyup", "notmpcopyup", "copy-symlink"))
MOUNT_OPTIONS = sorted([*_FLAG_OPTIONS, *_PROPAGATION])

_DEV_LINKS = (
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
)


def parse_options(options: list[str]) -> tuple[int, int, list[str]]:
    """Split mount options into (flags, propagation flags, filesystem data options)."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            clear, flag = _FLAG_OPTIONS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in _PROPAGATION:
            propagation |= _PROPAGATION[opt]
        elif opt and opt not in _IGNORED:
            data.append(opt)
    return flags, propagation, data


class RootfsBuilder:
    """Builds the container's filesystem view; one instance per container init."""

    def __init__(
        self,
        spec: dict,
        rootfs: str,
        syscalls: sc.LinuxSyscalls = sc.linux,
        before_cgroup_mount: Callable[[], None] | None = None,
        before_devices: Callable[[], None] | None = None,
    ) -> None:
        self.before_cgroup_mount = before_cgroup_mount
        self.before_devices = before_devices  # device nodes need the devices cgroup's final rules
        self.spec = spec
        self.linux = spec.get("linux", {})
        self.rootfs = rootfs
        self.sys = syscalls
        self.userns = any(ns["type"] == "user" for ns in self.linux.get("namespaces", []))
        self.cgroupns = any(ns["type"] == "cgroup" for ns in self.linux.get("namespaces", []))
        self.cgroup_path = ""

    # -- before pivot_root -------------------------------------------------------------------------
    def prepare(self) -> None:
        prop = self.linux.get("rootfsPropagation") or "rslave"
        # Keep the container's mounts from propagating back to the host (and vice versa unless asked).
        self.sys.mount(None, "/", None, _PROPAGATION.get(prop, sc.MS_SLAVE | sc.MS_REC), None)
        # pivot_root needs the new root to be a mount point.
        self.sys.mount(self.rootfs, self.rootfs, None, sc.MS_BIND | sc.MS_REC, None)
        dev_is_tmpfs = False
        for m in self.spec.get("mounts", []):
            self.mount_one(m)
            if m["destination"] == "/dev" and m.get("type") != "bind" and "bind" not in m.get("options", ()):
                dev_is_tmpfs = True
        if self.before_devices is not None:
            self.before_devices()
        if dev_is_tmpfs or not any(m["destination"] == "/dev" for m in self.spec.get("mounts", [])):
            self.create_devices(default=True)
        else:
            self.create_devices(default=False)

    def mount_one(self, m: dict) -> None:
        kind = m.get("type") or "none"
        options = m.get("options", [])
        flags, propagation, data = parse_options(options)
        source = m.get("source") or kind
        dest = securepath.resolve(self.rootfs, m["destination"])
        is_bind = bool(flags & sc.MS_BIND) or kind == "bind"
        if is_bind:
            flags |= sc.MS_BIND
            _make_target(dest, source)
        else:
            os.makedirs(dest, exist_ok=True)
        if kind == "cgroup":
            if self.before_cgroup_mount is not None:
                self.before_cgroup_mount()  # in the container's cgroup (namespace) before showing it
            self._mount_cgroup(dest, flags)
        elif is_bind:
            self.sys.mount(source, dest, None, flags & (sc.MS_BIND | sc.MS_REC), None)
            # Bind mounts ignore flags on the first call; apply them with a remount.
            extra = flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            if extra:
                self._remount(dest, extra)
        else:
            label = ",".join(data) or None
            try:
                self.sys.mount(source, dest, kind, flags, label)
            except PermissionError:
                if kind != "sysfs" or not self.userns:
                    raise
                # sysfs cannot be mounted in a user namespace without its own network namespace: bind it.
                self.sys.mount("/sys", dest, None, sc.MS_BIND | sc.MS_REC, None)
                self._remount(dest, flags)
        if propagation:
            self.sys.mount(None, dest, None, propagation, None)

    def _remount(self, dest: str, flags: int) -> None:
        """Remount a bind mount with ``flags``, keeping the locked flags a user namespace cannot drop."""
        locked = _statvfs_flags(dest)
        self.sys.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | flags | locked, None)

    def _mount_cgroup(self, dest: str, flags: int) -> None:
        from kobako.cgroups import detect

        ro = flags & sc.MS_RDONLY
        base = flags & (sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RELATIME)
        if detect() == "v2":
            self.sys.mount("cgroup2", dest, "cgroup2", base | ro, None)
            return
        # v1: a tmpfs with one directory per hierarchy, each showing only the container's own cgroup.
        self.sys.mount("tmpfs", dest, "tmpfs", base, "mode=755")
        for name, options in _v1_hierarchies():
            sub = os.path.join(dest, name)
            os.makedirs(sub, exist_ok=True)
            if self.cgroupns:
                self.sys.mount("cgroup", sub, "cgroup", base | ro, options)
            else:
                host = os.path.join("/sys/fs/cgroup", name, self.cgroup_path.lstrip("/"))
                self.sys.mount(host, sub, None, sc.MS_BIND | sc.MS_REC, None)
                if ro:
                    self._remount(sub, ro)
            for part in name.split(","):
                if part != name and not os.path.lexists(os.path.join(dest, part)):
                    os.symlink(name, os.path.join(dest, part))
        if ro:
            self._remount(dest, base | ro)

    def create_devices(self, default: bool) -> None:
        dev = securepath.resolve(self.rootfs, "/dev")
        devices = [(n, t, ma, mi, 0o666, 0, 0) for n, t, ma, mi in _DEFAULT_DEVICES] if default else []
        for d in self.linux.get("devices", []):
            kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d["type"]]
            devices.append(
                (
                    d["path"],
                    kind,
                    d.get("major", 0),
                    d.get("minor", 0),
                    d.get("fileMode", 0o666),
                    d.get("uid", 0),
                    d.get("gid", 0),
                )
            )
        for name, kind, major, minor, mode, uid, gid in devices:
            path = securepath.resolve(self.rootfs, name if name.startswith("/") else "/dev/" + name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path):
                os.unlink(path)
            if self.userns:
                # mknod is refused in a user namespace: bind the host's node instead.
                host = "/dev/" + name if not name.startswith("/") else name
                with open(path, "w"):
                    pass
                self.sys.mount(host, path, None, sc.MS_BIND, None)
                continue
            os.mknod(path, kind | (mode & 0o7777), os.makedev(major, minor))
            os.chmod(path, mode & 0o7777)  # mknod obeys the umask
            if uid or gid:
                os.chown(path, uid, gid)
        if default:
            for target, name in _DEV_LINKS:
                link = os.path.join(dev, name)
                if not os.path.lexists(link):
                    os.symlink(target, link)

    # -- pivot_root and after ----------------------------------------------------------------------
    def pivot(self, no_pivot: bool) -> None:
        os.chdir(self.rootfs)
        if no_pivot:
            self.sys.mount(self.rootfs, "/", None, sc.MS_MOVE, None)
            os.chroot(".")
        else:
            # pivot_root(".", ".") stacks the old root under the new one; detach it without a temp dir.
            self.sys.pivot_root(".", ".")
            self.sys.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
            self.sys.umount2(".", sc.MNT_DETACH)
        os.chdir("/")

    def finish(self) -> None:
        """After pivot_root and sysctls: read-only root, masked and read-only paths."""
        if self.spec["root"].get("readonly"):
            self._remount("/", sc.MS_RDONLY)
        for path in self.linux.get("readonlyPaths", []):
            self._readonly(path)
        for path in self.linux.get("maskedPaths", []):
            self._mask(path)

    def _readonly(self, path: str) -> None:
        try:
            self.sys.mount(path, path, None, sc.MS_BIND | sc.MS_REC, None)
        except FileNotFoundError:
            return
        self._remount(path, sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)

    def _mask(self, path: str) -> None:
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:
            return
        if is_dir:
            self.sys.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, None)
        else:
            self.sys.mount("/dev/null", path, None, sc.MS_BIND, None)


def _make_target(dest: str, source: str) -> None:
    """A bind target must match its source's kind: a directory for a directory, a file otherwise."""
    if os.path.lexists(dest):
        return
    try:
        is_dir = stat.S_ISDIR(os.stat(source).st_mode)
    except FileNotFoundError:
        raise FileNotFoundError(2, f"bind mount source {source} does not exist", source) from None
    if is_dir:
        os.makedirs(dest, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "a"):
            pass


def _statvfs_flags(path: str) -> int:
    st = os.statvfs(path)
    keep = 0
    for vfs, ms in (
        (os.ST_NOSUID, sc.MS_NOSUID),
        (os.ST_NODEV, sc.MS_NODEV),
        (os.ST_NOEXEC, sc.MS_NOEXEC),
        (os.ST_NOATIME, sc.MS_NOATIME),
        (os.ST_NODIRATIME, sc.MS_NODIRATIME),
        (os.ST_RELATIME, sc.MS_RELATIME),
        (os.ST_RDONLY, sc.MS_RDONLY),
    ):
        if st.f_flag & vfs:
            keep |= ms
    return keep


def _v1_hierarchies() -> list[tuple[str, str]]:
    """(directory name, mount options) of each cgroup v1 hierarchy mounted on the host."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _src, superopts = right.split()
            if fstype != "cgroup":
                continue
            mountpoint = left.split()[4]
            opts = [o for o in superopts.split(",") if o not in ("rw", "ro")]
            out.append((os.path.basename(mountpoint), ",".join(opts)))
    return out

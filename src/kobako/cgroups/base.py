"""The CgroupManager interface both drivers implement, plus the small file and value helpers they share.

Everything here is plain ``os``: the runtime's create→start→delete path imports this on every container.
"""

from __future__ import annotations

import errno
import os
import time

from kobako.errors import (
    FailedPrecondition,
    InvalidArgument,
    KobakoError,
    NotFound,
    PermissionDenied,
    from_oserror,
)

# typing (with re) costs ~12 ms to import on the 2-core CI VM, a third of the create→delete budget: type checkers
# see a Protocol, the interpreter a plain class with the same documented shape.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol
else:
    Protocol = object

DEFAULT_ROOT = "/sys/fs/cgroup"


class CgroupManager(Protocol):
    """One container's cgroup, in every hierarchy the driver uses."""

    path: str  # normalised cgroup path; give it back to load_manager() to re-open the cgroup

    def create(self) -> None: ...
    def apply(self, resources: dict) -> None: ...
    def add_task(self, pid: int) -> None: ...
    def join(self) -> None: ...  # the calling single-threaded process; on v1 far cheaper than add_task
    def join_files(self) -> list[str]: ...  # what join() writes "0" to
    def pids(self) -> list[int]: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    def is_frozen(self) -> bool: ...
    def stats(self) -> dict: ...
    def kill_all(self, sig: int) -> None: ...
    def remove(self) -> None: ...
    def exists(self) -> bool: ...


# --- paths -------------------------------------------------------------------------------------------


def normalise_path(cgroups_path: str | None, container_id: str) -> str:
    """Turn an OCI ``cgroupsPath`` into an absolute or relative cgroup path (no driver-specific resolution)."""
    if not cgroups_path:
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise InvalidArgument(f"container id {container_id!r} cannot name a cgroup")
        return "/kobako/" + container_id
    if "\n" in cgroups_path or "\0" in cgroups_path:
        raise InvalidArgument(f"cgroupsPath {cgroups_path!r} contains a newline or NUL")
    if not cgroups_path.startswith("/") and cgroups_path.count(":") == 2:
        return _systemd_path(cgroups_path)
    path = os.path.normpath(cgroups_path)
    if path == ".." or path.startswith("../"):
        raise InvalidArgument(f"cgroupsPath {cgroups_path!r} escapes the runtime's own cgroup")
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if path in ("/", "."):
        raise InvalidArgument(f"cgroupsPath {cgroups_path!r} would put the container in its parent's cgroup")
    return path


def _systemd_path(spec: str) -> str:
    # kobako has no systemd driver: lay "slice:prefix:name" out on cgroupfs the way systemd would name it.
    slice_, prefix, name = spec.split(":")
    if not name or "/" in spec:
        raise InvalidArgument(f"cgroupsPath {spec!r}: expected systemd form 'slice:prefix:name'")
    unit = (
        name if name.endswith((".scope", ".slice")) else (f"{prefix}-{name}" if prefix else name) + ".scope"
    )
    return expand_slice(slice_ or "system.slice") + "/" + unit


def expand_slice(slice_: str) -> str:
    """systemd slice name → cgroup path: "a-b.slice" lives at "/a.slice/a-b.slice"; "-.slice" is the root."""
    if not slice_.endswith(".slice") or "/" in slice_:
        raise InvalidArgument(f"{slice_!r} is not a systemd slice name")
    if slice_ == "-.slice":
        return ""
    stem = slice_[: -len(".slice")]
    if not stem or stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise InvalidArgument(f"{slice_!r} is not a valid systemd slice name")
    parts = stem.split("-")
    return "".join("/" + "-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def own_cgroups(proc_cgroup: str = "/proc/self/cgroup") -> dict[str, str]:
    """This process's cgroup per hierarchy: controller list ("cpu,cpuacct", "name=systemd", "" for v2) → path."""
    try:
        with open(proc_cgroup) as f:
            text = f.read()
    except OSError as exc:
        raise from_oserror(exc, f"reading {proc_cgroup}") from exc
    out: dict[str, str] = {}
    for line in text.splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        out[controllers] = path
    return out


# --- files -------------------------------------------------------------------------------------------


def write_file(directory: str, name: str, value: str) -> None:
    """Write one cgroup control file, translating the kernel's refusal into a kobako error naming file and value."""
    path = directory + "/" + name
    try:
        # O_TRUNC: ignored by cgroupfs, needed by the plain-file trees unit tests use.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise write_error(exc, path, value) from exc


def join_files(files: list[str]) -> None:
    """Move the calling process into a cgroup by writing "0" to each of ``files`` (a manager's
    join_files()): needs no mountinfo, so a forked child can do it with what its parent sent."""
    for path in files:
        directory, _, name = path.rpartition("/")
        write_file(directory, name, "0")


def write_error(exc: OSError, path: str, value: str) -> KobakoError:
    what = f"writing {value!r} to {path}"
    code = exc.errno
    if code == errno.ENOENT:
        if not os.path.isdir(os.path.dirname(path)):
            return NotFound(f"{what}: cgroup {os.path.dirname(path)} does not exist")
        return InvalidArgument(f"{what}: no such cgroup file (controller missing or not enabled)")
    if code in (errno.EINVAL, errno.ERANGE, errno.EOVERFLOW):
        return InvalidArgument(f"{what}: value rejected by the kernel ({exc.strerror})")
    if code in (errno.EBUSY, errno.ENOSPC, errno.EOPNOTSUPP):
        return FailedPrecondition(f"{what}: {exc.strerror}")
    if code == errno.ESRCH:
        return NotFound(f"{what}: no such process")
    if code in (errno.EPERM, errno.EACCES):
        return PermissionDenied(f"{what}: {exc.strerror}")
    return from_oserror(exc, what)


def read_file(directory: str, name: str) -> str:
    path = directory + "/" + name
    try:
        with open(path) as f:
            return f.read()
    except OSError as exc:
        raise from_oserror(exc, f"reading {path}") from exc


def read_optional(directory: str, name: str) -> str | None:
    """A stats file that this kernel or controller may not have: None when missing."""
    try:
        with open(directory + "/" + name) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise from_oserror(exc, f"reading {directory}/{name}") from exc


def read_procs(directory: str) -> list[int]:
    """PIDs in this cgroup and every cgroup below it (a container may nest its own)."""
    out: list[int] = []
    try:
        with open(directory + "/cgroup.procs") as f:
            out.extend(int(x) for x in f.read().split())
        with os.scandir(directory) as it:
            subdirs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise from_oserror(exc, f"listing {directory}/cgroup.procs") from exc
    for sub in subdirs:
        out.extend(read_procs(sub))
    return out


def mkdirs(directory: str) -> bool:
    """mkdir that tries the common case (parent exists) first; True if this call created the leaf."""
    try:
        os.mkdir(directory, 0o755)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise from_oserror(exc, f"creating cgroup {directory}") from exc
    try:
        os.makedirs(os.path.dirname(directory), 0o755, exist_ok=True)
        os.mkdir(directory, 0o755)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise from_oserror(exc, f"creating cgroup {directory}") from exc


def rmdir_tree(directory: str, attempts: int = 12) -> None:
    """Remove a cgroup and any cgroups nested inside it; missing is fine, EBUSY (exiting tasks) is retried."""
    delay = 0.001  # a killed task is usually gone within a millisecond or two
    for attempt in range(attempts):
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY) or attempt == attempts - 1:
                raise from_oserror(exc, f"removing cgroup {directory}") from exc
        try:
            with os.scandir(directory) as it:
                subdirs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return
        for sub in subdirs:
            rmdir_tree(sub, attempts)
        if not subdirs:
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``predicate`` with a short, growing sleep (freezing usually settles within a millisecond)."""
    deadline = time.monotonic() + timeout
    delay = 0.0002
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return True


def signal_all(manager: CgroupManager, sig: int) -> None:
    """Signal every task, frozen first so nothing forks past the snapshot of pids (as runc does)."""
    if not manager.pids():
        return  # the common delete of an exited container: no freeze round trip
    was_frozen = manager.is_frozen()
    froze = False
    if not was_frozen:
        try:
            manager.freeze()
            froze = True
        except KobakoError:
            pass  # no freezer, or a task stuck in D state: still deliver the signal
    try:
        for pid in manager.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            except OSError as exc:
                raise from_oserror(exc, f"sending signal {sig} to pid {pid}") from exc
    finally:
        # A frozen task cannot act on SIGKILL under the v1 freezer; other signals leave a paused container paused.
        if froze or (was_frozen and sig == 9):
            manager.thaw()


def parse_keyed(text: str | None) -> dict[str, int]:
    """Parse "key value" lines (memory.stat, cpu.stat, cgroup.events); non-integer values are skipped."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def parse_int(text: str | None, unlimited: int = 0) -> int:
    """A one-number file; "max" (v2) becomes ``unlimited``."""
    if text is None:
        return 0
    text = text.strip()
    if text == "max":
        return unlimited
    try:
        return int(text)
    except ValueError:
        return 0

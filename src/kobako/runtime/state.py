"""A container's state directory: ``<root>/<id>/state.json`` (saved atomically) and ``exec.fifo``.

A stored PID is never trusted bare: the process start time (field 22 of /proc/PID/stat) is stored beside it
and checked before the PID is called alive, signalled or waited for.
"""

from __future__ import annotations

import os
import time

from kobako.errors import AlreadyExists, InvalidArgument, NotFound
from kobako.oci import jsoncodec
from kobako.runtime import status as st

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

STATE_FILE = "state.json"
FIFO = "exec.fifo"
OCI_VERSION = "1.0.2"
_VALID_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def default_root() -> str:
    """``--root`` default: ``/run/kobako-runtime`` as runc's is /run/runc; under ``$KOBAKO_ROOT`` when set."""
    from kobako import paths

    return paths.runtime_root() if os.environ.get("KOBAKO_ROOT") else "/run/kobako-runtime"


def check_id(container_id: str) -> None:
    if not container_id:
        raise InvalidArgument("container ID must not be empty")
    if container_id in (".", "..") or not set(container_id) <= _VALID_ID_CHARS or len(container_id) > 1024:
        raise InvalidArgument(
            f"invalid container ID {container_id!r}: use letters, digits, '_', '+', '-', '.'"
        )


class State:
    """What the runtime remembers of a container between commands (plain class: dataclasses import ``re``)."""

    FIELDS = (
        "id", "bundle", "pid", "pid_start", "status", "created", "annotations",
        "rootfs", "cgroup_path", "hooks", "owns_pidns", "owner",
    )  # fmt: skip

    def __init__(
        self,
        id: str,
        bundle: str,
        pid: int = 0,
        pid_start: int = 0,
        status: str = st.CREATED,
        created: str = "",
        annotations: dict[str, str] | None = None,
        rootfs: str = "",
        cgroup_path: str = "",
        hooks: dict[str, Any] | None = None,
        owns_pidns: bool = True,
        owner: str = "root",
    ) -> None:
        self.id = id
        self.bundle = bundle
        self.pid = pid
        self.pid_start = pid_start
        self.status = status
        self.created = created
        self.annotations = annotations or {}
        self.rootfs = rootfs
        self.cgroup_path = cgroup_path
        self.hooks = hooks or {}
        self.owns_pidns = owns_pidns
        self.owner = owner

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def oci(self) -> dict[str, Any]:
        """The OCI state JSON (what ``state`` prints and hooks read on stdin)."""
        out: dict[str, Any] = {"ociVersion": OCI_VERSION, "id": self.id, "status": self.status}
        if self.status != st.STOPPED:
            out["pid"] = self.pid
        out["bundle"] = self.bundle
        out["rootfs"] = self.rootfs
        out["created"] = self.created
        if self.annotations:
            out["annotations"] = self.annotations
        out["owner"] = self.owner
        return out


class StateDir:
    def __init__(self, root: str, container_id: str) -> None:
        check_id(container_id)
        self.root = root
        self.id = container_id
        self.path = os.path.join(root, container_id)

    @property
    def fifo(self) -> str:
        return os.path.join(self.path, FIFO)

    def create(self) -> None:
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise AlreadyExists(f"container with id {self.id!r} already exists") from None

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def save(self, state: State) -> None:
        tmp = os.path.join(self.path, f".{STATE_FILE}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, jsoncodec.dumps(state.to_dict()).encode())
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.path, STATE_FILE))

    def load(self) -> State:
        try:
            with open(os.path.join(self.path, STATE_FILE), "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            if self.exists():
                return State(id=self.id, bundle="", status=st.CREATING)
            raise NotFound(f"container {self.id!r} does not exist") from None
        data = jsoncodec.loads(raw, what=f"state of {self.id}")
        return State(**{k: v for k, v in data.items() if k in State.FIELDS})

    def remove(self) -> None:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass


def list_ids(root: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root) if not n.startswith("."))
    except FileNotFoundError:
        return []


def process_start_time(pid: int) -> int:
    """Start time of ``pid`` in clock ticks since boot, or 0 if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    # The command name may hold spaces and parens: fields start after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return 0
    return int(fields[19])


def is_alive(state: State) -> bool:
    return state.pid > 0 and process_start_time(state.pid) == state.pid_start


def refresh(state: State, state_dir: StateDir) -> State:
    """Derive the true status from the kernel: dead → stopped; fifo still there → created."""
    if state.status == st.CREATING:
        return state
    if not is_alive(state):
        state.status = st.STOPPED
    elif state.status == st.PAUSED:
        pass
    elif os.path.exists(state_dir.fifo):
        state.status = st.CREATED
    else:
        state.status = st.RUNNING
    return state


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"

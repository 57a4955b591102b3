"""Container *records*: what a container is (id, name, image, spec, snapshot), never whether it runs.

Layout under ``<state_root>/containers/`` (see docs/design/engine-contracts.md)::

    <id>/config.json     this record (atomic: temp + rename)
    <id>/state.json      the task's state, written by the monitor (kobako.engine.tasks)
    <id>/.lock           flock'd around lifecycle changes (start, stop, rm, rename ...)
    .names/<name> → <id> a symlink per name: symlink(2) fails if the name exists, so claiming a name is
                         atomic without a global lock; a link whose record is gone or renamed is stale

References resolve by full id, by name, then by unique id prefix (docker's order).
"""

from __future__ import annotations

import os

from kobako import filetree, paths
from kobako.engine import names
from kobako.errors import Conflict, InvalidArgument, NotFound, from_oserror
from kobako.oci import jsoncodec

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

CONFIG = "config.json"
STATE = "state.json"


class ContainerRecord:
    """One container's record (plain class: dataclasses import ``re``)."""

    FIELDS = (
        "id", "name", "image", "image_id", "created", "path", "args", "config", "host_config",
        "snapshot_key", "restart_policy", "healthcheck", "labels", "mounts", "stop_signal", "stop_timeout",
        "auto_remove", "tty", "interactive",
    )  # fmt: skip

    def __init__(self, id: str, name: str, image: str = "", **fields: Any) -> None:
        self.id = id
        self.name = name
        self.image = image  # the reference as the user gave it
        self.image_id: str = fields.get("image_id", "")
        self.created: str = fields.get("created", "")
        self.path: str = fields.get("path", "")  # docker's Path/Args: the process the container runs
        self.args: list[str] = fields.get("args") or []
        self.config: dict = fields.get("config") or {}  # docker-style Config (Env, Cmd, WorkingDir, ...)
        self.host_config: dict = fields.get("host_config") or {}  # docker-style HostConfig
        self.snapshot_key: str = fields.get("snapshot_key", "")  # "" when the bundle rootfs is a plain dir
        self.restart_policy: dict = fields.get("restart_policy") or {"Name": "no", "MaximumRetryCount": 0}
        self.healthcheck: dict | None = fields.get("healthcheck")  # {"Test", "Interval", ...} in seconds
        self.labels: dict[str, str] = fields.get("labels") or {}
        self.mounts: list[dict] = fields.get("mounts") or []  # docker-style Mounts for inspect
        self.stop_signal: str = fields.get("stop_signal") or "SIGTERM"
        self.stop_timeout: int = int(fields.get("stop_timeout", 10))
        self.auto_remove: bool = bool(fields.get("auto_remove", False))
        self.tty: bool = bool(fields.get("tty", False))
        self.interactive: bool = bool(fields.get("interactive", False))

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerRecord:
        fields = {k: v for k, v in data.items() if k in cls.FIELDS and k not in ("id", "name", "image")}
        return cls(data["id"], data["name"], data.get("image", ""), **fields)


class ContainerStore:
    def __init__(self, root: str | None = None) -> None:
        self.dir = os.path.join(root or paths.state_root(), "containers")
        self.names_dir = os.path.join(self.dir, ".names")

    # --- paths -------------------------------------------------------------------------------------

    def path(self, container_id: str, *parts: str) -> str:
        return os.path.join(self.dir, container_id, *parts)

    def bundle(self, container_id: str) -> str:
        return self.path(container_id, "bundle")

    def rootfs(self, container_id: str) -> str:
        return self.path(container_id, "bundle", "rootfs")

    # --- create / save / remove -------------------------------------------------------------------

    def create(self, record: ContainerRecord, name: str | None = None) -> ContainerRecord:
        """Give ``record`` a fresh id (unless it comes with one: 64 hex digits, unused) and a unique name,
        and write it. Raises Conflict for a taken name or id."""
        os.makedirs(self.names_dir, mode=0o700, exist_ok=True)
        if not record.id:
            record.id = os.urandom(32).hex()
        elif len(record.id) != 64 or not all(c in "0123456789abcdef" for c in record.id):
            raise InvalidArgument(f"invalid container id {record.id!r}: 64 lowercase hex digits")
        if name:
            record.name = names.check(name)
            self._claim(record.name, record.id)
        else:
            for attempt in range(20):
                record.name = names.random_name(attempt)
                try:
                    self._claim(record.name, record.id)
                    break
                except Conflict:
                    continue
            else:
                raise Conflict("could not find a free random container name")
        try:
            os.mkdir(self.path(record.id), 0o700)
        except FileExistsError:
            self._release(record.name, record.id)
            raise Conflict(f"a container with id {record.id} already exists") from None
        except BaseException:
            self._release(record.name, record.id)
            raise
        try:
            self.save(record)
        except BaseException:
            self._release(record.name, record.id)
            _rmtree(self.path(record.id))
            raise
        return record

    def save(self, record: ContainerRecord) -> None:
        write_atomic(self.path(record.id, CONFIG), jsoncodec.dumps(record.to_dict()).encode())

    def remove(self, record: ContainerRecord) -> None:
        """Delete the record directory (logs, state, bundle: the caller has unmounted it) and its name."""
        _rmtree(self.path(record.id))
        self._release(record.name, record.id)

    def rename(self, record: ContainerRecord, new_name: str) -> None:
        new = names.check(new_name)
        if new == record.name:
            raise Conflict(f"renaming a container with the same name as its current name: {new!r}")
        self._claim(new, record.id)
        old, record.name = record.name, new
        try:
            self.save(record)
        except BaseException:
            record.name = old
            self._release(new, record.id)
            raise
        self._release(old, record.id)

    # --- lookup -----------------------------------------------------------------------------------

    def load(self, container_id: str) -> ContainerRecord:
        try:
            with open(self.path(container_id, CONFIG), "rb") as f:
                raw = f.read()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no such container: {container_id}") from None
        return ContainerRecord.from_dict(jsoncodec.loads(raw, what=f"container record {container_id}"))

    def get(self, ref: str) -> ContainerRecord:
        """Full id, then name (with or without a leading "/"), then unique id prefix."""
        if not ref:
            raise NotFound("no such container: ''")
        if len(ref) == 64 and os.path.isfile(self.path(ref, CONFIG)):
            return self.load(ref)
        bare = ref[1:] if ref.startswith("/") else ref
        if "/" not in bare:
            target = self._name_target(bare)
            if target:
                return self.load(target)
        if all(c in "0123456789abcdef" for c in ref):
            matches = [i for i in self.ids() if i.startswith(ref)]
            if len(matches) > 1:
                raise InvalidArgument(f"multiple containers match the prefix {ref!r}: be more specific")
            if matches:
                return self.load(matches[0])
        raise NotFound(f"no such container: {ref}")

    def ids(self) -> list[str]:
        try:
            entries = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return [e for e in entries if len(e) == 64 and os.path.isfile(os.path.join(self.dir, e, CONFIG))]

    def list(self) -> list[ContainerRecord]:
        """Every record, newest first (records being written or removed right now are skipped)."""
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
            except (NotFound, InvalidArgument):
                continue
        out.sort(key=lambda r: r.created, reverse=True)
        return out

    def orphan_dirs(self) -> list[str]:
        """Directories without a record: a create killed between mkdir and the first write."""
        try:
            entries = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return [e for e in entries if len(e) == 64 and not os.path.exists(os.path.join(self.dir, e, CONFIG))]

    def lock(self, container_id: str) -> RecordLock:
        return RecordLock(self.path(container_id, ".lock"), container_id)

    # --- names ------------------------------------------------------------------------------------

    def _claim(self, name: str, container_id: str) -> None:
        link = os.path.join(self.names_dir, name)
        for _ in range(3):
            try:
                os.symlink(container_id, link)
                return
            except FileExistsError:
                owner = self._name_target(name)
                if owner:
                    raise Conflict(
                        f'the container name "/{name}" is already in use by container "{owner}". '
                        "You have to remove (or rename) that container to be able to reuse that name."
                    ) from None
                try:
                    os.unlink(link)  # stale: its record is gone or was renamed
                except FileNotFoundError:
                    pass
        raise Conflict(f"could not claim the container name {name!r}")

    def _name_target(self, name: str) -> str:
        """The id that truly owns ``name`` ("" if none: missing or stale link)."""
        try:
            target = os.readlink(os.path.join(self.names_dir, name))
        except (FileNotFoundError, OSError):
            return ""
        try:
            return target if self.load(target).name == name else ""
        except (NotFound, InvalidArgument):
            # The record may still be being written by `create`: the claim stands while its dir exists.
            return target if os.path.isdir(self.path(target)) else ""

    def _release(self, name: str, container_id: str) -> None:
        link = os.path.join(self.names_dir, name)
        try:
            if os.readlink(link) == container_id:
                os.unlink(link)
        except OSError:
            pass


class RecordLock:
    """flock on ``<id>/.lock``; entering fails with NotFound if the record was removed meanwhile."""

    def __init__(self, path: str, container_id: str) -> None:
        self.path = path
        self.id = container_id
        self.fd = -1

    def __enter__(self) -> RecordLock:
        import fcntl

        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise NotFound(f"no such container: {self.id}") from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(os.path.dirname(self.path), CONFIG)):
            self.__exit__()
            raise NotFound(f"no such container: {self.id}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing releases the flock
            self.fd = -1


def write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def read_json(path: str) -> dict | None:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return jsoncodec.loads(raw, what=path)
    except InvalidArgument:
        return None


def _rmtree(path: str) -> None:
    if not os.path.lexists(path):
        return
    from kobako.mount import mounted_under

    if mounted_under(path):  # removing would walk into the mounted rootfs or a volume
        raise Conflict(f"cannot remove {path}: something is still mounted under it")
    try:
        filetree.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise from_oserror(exc, f"removing {path}") from exc

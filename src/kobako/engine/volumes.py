"""Named and anonymous volumes (the "local" driver), and the OCI mounts for ``-v``/``--mount``/image VOLUMEs.

Layout: ``<state_root>/volumes/<name>/_data`` (what containers see) and ``<name>/volume.json``. A
volume appears whole or not at all: it is built under a temporary name and renamed into place.

In use = named by a container record. By default the store scans ``<state_root>/containers/*/config.json``
and counts a record as a user of a volume when its ``volumes`` field (a list of names) names it, or one
of its ``mounts`` has that ``Name`` or a ``Source`` inside the volume. Tests and other layouts pass
``users=`` (a callable returning {volume name: [container ids]}). There is no refcount file to leak.

An empty volume mounted where the image has files is filled with them on its first use, as Docker does
(``nocopy`` skips it); afterwards it is never refilled, even when emptied, as in Podman.
"""

from __future__ import annotations

import os

from kobako import paths
from kobako.engine import copyup
from kobako.engine.mountspecs import MountSpec, all_specs, check_volume_name
from kobako.errors import Conflict, InvalidArgument, KobakoError, NotFound
from kobako.oci import jsoncodec
from kobako.runtime import securepath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.engine.runopts import RunOptions

META = "volume.json"
DATA = "_data"
ANONYMOUS_LABEL = "kobako.volume.anonymous"


class Volume:
    def __init__(self, name: str, mountpoint: str, meta: dict) -> None:
        self.name = name
        self.mountpoint = mountpoint
        self.driver: str = meta.get("Driver", "local")
        self.created_at: str = meta.get("CreatedAt", "")
        self.labels: dict[str, str] = meta.get("Labels") or {}
        self.options: dict[str, str] = meta.get("Options") or {}
        self.needs_copy: bool = bool(meta.get("NeedsCopyUp", False))

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def meta(self) -> dict[str, object]:
        return {"Driver": self.driver, "CreatedAt": self.created_at, "Labels": self.labels,
                "Options": self.options, "NeedsCopyUp": self.needs_copy}  # fmt: skip

    def inspect(self) -> dict[str, object]:
        """Docker's ``volume inspect`` shape."""
        return {"CreatedAt": self.created_at, "Driver": self.driver, "Labels": self.labels,
                "Mountpoint": self.mountpoint, "Name": self.name, "Options": self.options, "Scope": "local"}  # fmt: skip


class VolumeStore:
    def __init__(
        self, root: str | None = None, users: Callable[[], dict[str, list[str]]] | None = None
    ) -> None:
        self.root = root or os.path.join(paths.state_root(), "volumes")
        self._users = users

    def _dir(self, name: str) -> str:
        return os.path.join(self.root, check_volume_name(name))

    def create(self, name: str | None = None, labels: dict[str, str] | None = None, driver: str = "local",
               opts: dict[str, str] | None = None) -> Volume:  # fmt: skip
        """A new volume (random 64-hex name when None); an existing name is returned as is, as docker does."""
        if driver != "local":
            raise InvalidArgument(f'volume driver {driver!r} is not supported (only "local")')
        if opts:
            raise InvalidArgument(
                f"volume options are not supported by kobako's local driver yet: {sorted(opts)}"
            )
        name = name or os.urandom(32).hex()
        final = self._dir(name)
        if os.path.isdir(final):
            return self.get(name)
        import time

        os.makedirs(self.root, mode=0o700, exist_ok=True)
        tmp = os.path.join(self.root, f".tmp-{name}-{os.urandom(4).hex()}")
        os.mkdir(tmp, 0o700)
        try:
            os.mkdir(os.path.join(tmp, DATA), 0o755)
            meta = {"Driver": "local", "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "Labels": dict(labels or {}), "Options": {}, "NeedsCopyUp": True}  # fmt: skip
            _write_json(os.path.join(tmp, META), meta)
            os.rename(tmp, final)
        except OSError:
            _rmtree(tmp)
            if os.path.isdir(final):  # another process created it first: same result
                return self.get(name)
            raise
        return Volume(name, os.path.join(final, DATA), meta)

    def get(self, name: str) -> Volume:
        directory = self._dir(name)
        try:
            with open(os.path.join(directory, META), "rb") as f:
                meta = jsoncodec.loads(f.read(), what=f"volume {name}")
        except FileNotFoundError:
            raise NotFound(f"no such volume: {name}") from None
        return Volume(name, os.path.join(directory, DATA), meta)

    def exists(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self._dir(name), META))

    def list(self) -> list[Volume]:
        try:
            names = sorted(n for n in os.listdir(self.root) if not n.startswith("."))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                out.append(self.get(name))
            except (NotFound, InvalidArgument):
                continue  # removed meanwhile, or not a volume directory
        return out

    def inspect(self, name: str) -> dict[str, object]:
        return self.get(name).inspect()

    def usage(self) -> dict[str, list[str]]:
        """{volume name: [container ids]} for every volume in use."""
        if self._users is not None:
            return self._users()
        return scan_containers(os.path.join(os.path.dirname(self.root.rstrip("/")), "containers"), self.root)

    def in_use(self, name: str) -> list[str]:
        return self.usage().get(name, [])

    def remove(self, name: str, force: bool = False) -> None:
        """Remove a volume; a volume in use is refused even with ``force`` (which ignores a missing one)."""
        if not self.exists(name):
            if force:
                return
            raise NotFound(f"no such volume: {name}")
        users = self.in_use(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        self._delete(name)

    def _delete(self, name: str) -> None:
        trash = os.path.join(self.root, f".trash-{name}-{os.urandom(4).hex()}")
        os.rename(self._dir(name), trash)  # gone for everyone at once, then deleted at leisure
        _rmtree(trash)

    def prune(self) -> list[str]:
        """Remove every volume no container uses; return their names."""
        used = self.usage()
        removed = []
        for vol in self.list():
            if not used.get(vol.name):
                self._delete(vol.name)
                removed.append(vol.name)
        return removed

    def names_in(self, mounts: list[dict]) -> list[str]:
        """The volumes an OCI mount list uses (what a container record should keep in ``volumes``)."""
        prefix = self.root.rstrip("/") + "/"
        found = []
        for m in mounts:
            src = str(m.get("source", ""))
            name = (
                src[len(prefix) : -len("/" + DATA)]
                if src.startswith(prefix) and src.endswith("/" + DATA)
                else ""
            )
            if name and "/" not in name and name not in found:
                found.append(name)
        return found

    def fill_from_image(self, vol: Volume, image_path: str) -> None:
        """First use: copy ``image_path`` (a host path inside the rootfs) into an empty volume, once."""
        import fcntl

        with open(os.path.join(os.path.dirname(vol.mountpoint), ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two containers starting on one new volume copy once
            current = self.get(vol.name)
            if not current.needs_copy:
                return
            if (
                os.path.isdir(image_path)
                and not os.path.islink(image_path)
                and copyup.is_empty(vol.mountpoint)
            ):
                copyup.copy_tree(image_path, vol.mountpoint)
            current.needs_copy = False
            _write_json(os.path.join(os.path.dirname(vol.mountpoint), META), current.meta())


def volume_mounts(opts: RunOptions, image_config: dict, rootfs: str, store: VolumeStore,
                  container_id: str) -> list[dict]:  # fmt: skip
    """OCI mounts for -v/--mount binds and volumes and for the image's VOLUMEs (anonymous volumes where no
    mount covers them). ``rootfs`` must be the container's mounted root (image content is copied from it).
    Volumes created here are removed again if a later one fails."""
    specs = all_specs(opts.volumes, opts.mounts, opts.tmpfs)
    targets = {m.target for m in specs}
    inner = image_config.get("config")
    img = inner if isinstance(inner, dict) else image_config
    for path in sorted(img.get("Volumes") or {}):
        clean = os.path.normpath("/" + path.lstrip("/"))
        if clean != "/" and clean not in targets:
            specs.append(MountSpec("volume", clean, origin="image"))
            targets.add(clean)
    created: list[str] = []
    out = []
    try:
        for m in specs:
            if m.kind == "bind":
                out.append(_bind(m))
            elif m.kind == "volume":
                out.append(_volume(m, store, rootfs, created))
    except BaseException as exc:
        for name in created:
            try:
                store.remove(name, force=True)
            except KobakoError as cleanup:
                if isinstance(exc, KobakoError):
                    exc.add_cleanup_error(cleanup)
        raise
    return out


def _bind(m: MountSpec) -> dict:
    if not os.path.exists(m.source):
        if m.origin != "-v":
            raise InvalidArgument(
                f'invalid mount config for type "bind": bind source path does not exist: {m.source}'
            )
        os.makedirs(m.source, 0o755, exist_ok=True)  # docker's -v creates a missing host directory
    options = ["rbind" if m.recursive else "bind", "ro" if m.readonly else "rw", m.propagation or "rprivate"]
    return {"destination": m.target, "type": "bind", "source": m.source, "options": options}


def _volume(m: MountSpec, store: VolumeStore, rootfs: str, created: list[str]) -> dict:
    labels = dict(m.labels)
    if not m.source:
        labels[ANONYMOUS_LABEL] = ""
    name = m.source or os.urandom(32).hex()
    if store.exists(name):
        vol = store.get(name)
    else:
        vol = store.create(name, labels=labels, opts=m.volume_opts)
        created.append(name)
    if vol.needs_copy and not m.nocopy:
        store.fill_from_image(vol, securepath.resolve(rootfs, m.target))
    # Volumes hold data: no setuid binaries or device nodes take effect from them (Podman's defaults).
    options = ["rbind", "ro" if m.readonly else "rw", "rprivate", "nosuid", "nodev"]
    return {"destination": m.target, "type": "bind", "source": vol.mountpoint, "options": options}


def scan_containers(containers_dir: str, volumes_root: str) -> dict[str, list[str]]:
    """{volume name: [container ids]} from the container records (see the module doc)."""
    store = VolumeStore(volumes_root, users=dict)
    used: dict[str, list[str]] = {}
    try:
        ids = [d for d in os.listdir(containers_dir) if not d.startswith(".")]
    except FileNotFoundError:
        return used
    for cid in ids:
        try:
            with open(os.path.join(containers_dir, cid, "config.json"), "rb") as f:
                record = jsoncodec.loads(f.read(), what=f"container {cid}")
        except (OSError, InvalidArgument):
            continue  # not a record (or one being created): it names no volume yet
        if not isinstance(record, dict):
            continue
        names = [n for n in record.get("volumes") or [] if isinstance(n, str)]
        mounts = [m for m in record.get("mounts") or [] if isinstance(m, dict)]
        names += [m["Name"] for m in mounts if isinstance(m.get("Name"), str) and m["Name"]]
        names += store.names_in([{"source": m.get("Source") or m.get("source") or ""} for m in mounts])
        for name in dict.fromkeys(names):
            used.setdefault(name, []).append(cid)
    return used


def _write_json(path: str, data: object) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(jsoncodec.dumps(data))
    os.replace(tmp, path)


def _rmtree(path: str) -> None:
    import shutil  # only removal needs it (it costs start-up time)

    if os.path.lexists(path):
        shutil.rmtree(path)

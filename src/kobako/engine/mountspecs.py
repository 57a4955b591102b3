"""What ``-v``, ``--mount`` and ``--tmpfs`` ask for, parsed and checked (docker's syntax and messages).

    -v /host:/ctr[:ro,rprivate,z]   bind (SRC absolute or ./relative)   -v name:/ctr[:ro,nocopy]  named volume
    -v /ctr                         anonymous volume
    --mount type=bind|volume|tmpfs,source=…,target=…,readonly,bind-propagation=…,volume-opt=k=v,tmpfs-size=64m
    --tmpfs /ctr[:size=64m,mode=1777,exec]

Nothing here touches the host: volumes.py turns binds and volumes into OCI mounts, specgen.py does tmpfs.
"""

from __future__ import annotations

import os

from kobako.engine.sizes import parse_bytes
from kobako.errors import InvalidArgument

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_VOLUME_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_VOLUME_NAME_REST = _VOLUME_NAME_FIRST | frozenset("_.-")
_IGNORED_MODES = ("z", "Z", "consistent", "cached", "delegated")  # SELinux relabel, Docker Desktop hints
_TMPFS_FLAGS = frozenset(("rw", "ro", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async",
                          "dirsync", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
                          "strictatime", "nostrictatime", "tmpcopyup", "notmpcopyup", *PROPAGATIONS))  # fmt: skip
_TMPFS_DATA = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge")
# Docker's defaults for a tmpfs: no devices, no setuid, no executables (user options may lift them).
TMPFS_DEFAULTS = ("nosuid", "nodev", "noexec")


class MountSpec:
    """One requested mount. ``kind`` is "bind", "volume" or "tmpfs"; ``source`` "" means anonymous volume."""

    def __init__(self, kind: str, target: str, source: str = "", origin: str = "--mount") -> None:
        self.kind = kind
        self.source = source
        self.target = target
        self.origin = origin  # "-v", "--mount" or "--tmpfs": docker treats a missing bind source per flag
        self.readonly = False
        self.propagation = ""
        self.recursive = True
        self.nocopy = False
        self.labels: dict[str, str] = {}
        self.volume_opts: dict[str, str] = {}
        self.tmpfs_options: list[str] = []

    def __repr__(self) -> str:
        return f"MountSpec({self.kind}, {self.source!r} -> {self.target!r}, ro={self.readonly})"


def check_volume_name(name: str, what: str = "volume name") -> str:
    if len(name) < 2 or name[0] not in _VOLUME_NAME_FIRST or any(c not in _VOLUME_NAME_REST for c in name):
        raise InvalidArgument(
            f"{what} {name!r} includes invalid characters for a local volume name, only "
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed (at least 2 characters). '
            "If you intended to pass a host directory, use an absolute path"
        )
    return name


def _check_target(target: str, spec: str, flag: str) -> str:
    if not target.startswith("/"):
        raise InvalidArgument(
            f"invalid {flag} specification {spec!r}: mount path {target!r} must be absolute"
        )
    clean = os.path.normpath(target)
    if clean.startswith("//"):
        clean = clean[1:]
    if clean == "/":
        raise InvalidArgument(f"invalid {flag} specification {spec!r}: destination can't be '/'")
    return clean


def parse_volume(spec: str) -> MountSpec:
    """``-v``: ``DST``, ``SRC:DST`` or ``SRC:DST:MODES``."""
    parts = spec.split(":")
    if len(parts) > 3 or not all(parts[: len(parts) - (len(parts) == 3)]):
        raise InvalidArgument(f"invalid volume specification: {spec!r}")
    if len(parts) == 1:
        return MountSpec("volume", _check_target(parts[0], spec, "volume"), origin="-v")
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) == 3 else []
    if source.startswith(("/", "./", "../")) or source in (".", ".."):
        m = MountSpec("bind", _check_target(target, spec, "volume"), os.path.abspath(source), origin="-v")
    else:
        m = MountSpec("volume", _check_target(target, spec, "volume"), check_volume_name(source), origin="-v")
    rw_seen = False
    for mode in modes:
        if mode in ("ro", "rw"):
            if rw_seen:
                raise InvalidArgument(f"invalid mode: {parts[2]!r} in volume specification {spec!r}")
            rw_seen = True
            m.readonly = mode == "ro"
        elif mode in PROPAGATIONS and m.kind == "bind" and not m.propagation:
            m.propagation = mode
        elif mode == "nocopy" and m.kind == "volume":
            m.nocopy = True
        elif mode in _IGNORED_MODES:
            continue
        else:
            raise InvalidArgument(f"invalid mode: {mode!r} in volume specification {spec!r}")
    return m


def _csv_fields(text: str) -> list[str]:
    """Split like Go's csv reader: commas separate, double quotes protect commas (``"volume-opt=o=a,b"``)."""
    fields, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise InvalidArgument(f'invalid argument {text!r} for "--mount" flag: unbalanced quotes')
    fields.append("".join(current))
    return fields


def _bool(value: str, key: str, spec: str) -> bool:
    low = value.lower()
    if low in ("", "true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise InvalidArgument(f'invalid argument {spec!r} for "--mount" flag: invalid value for {key}: {value!r}')


def parse_mount(spec: str) -> MountSpec:
    """``--mount``: comma-separated key=value pairs; type defaults to volume, as in docker."""
    bad = f'invalid argument {spec!r} for "--mount" flag'
    kind, source, target = "volume", "", ""
    fields: list[tuple[str, str]] = []
    for field in _csv_fields(spec):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq and key not in ("readonly", "ro", "bind-nonrecursive", "volume-nocopy"):
            raise InvalidArgument(f"{bad}: invalid field {field!r} must be a key=value pair")
        if key == "type":
            if value not in ("bind", "volume", "tmpfs"):
                raise InvalidArgument(f"{bad}: type {value!r} is not valid (bind, volume or tmpfs)")
            kind = value
        elif key in ("source", "src"):
            source = value
        elif key in ("target", "destination", "dst"):
            target = value
        else:
            fields.append((key, value))
    if not target:
        raise InvalidArgument(f"{bad}: target is required")
    m = MountSpec(kind, _check_target(target, spec, "mount"), origin="--mount")
    if kind == "bind":
        if not source:
            raise InvalidArgument(
                f'{bad}: invalid mount config for type "bind": field Source must not be empty'
            )
        m.source = os.path.abspath(source)
    elif kind == "volume":
        m.source = check_volume_name(source) if source else ""
    elif source:
        raise InvalidArgument(
            f'{bad}: invalid mount config for type "tmpfs": field Source must not be specified'
        )
    for key, value in fields:
        prefix = key.split("-", 1)[0]
        if prefix in ("bind", "volume", "tmpfs") and prefix != kind:
            raise InvalidArgument(f"{bad}: cannot mix '{prefix}-*' options with mount type '{kind}'")
        if key in ("readonly", "ro"):
            m.readonly = _bool(value, key, spec)
        elif key == "bind-propagation":
            if value not in PROPAGATIONS:
                raise InvalidArgument(f"{bad}: invalid bind-propagation {value!r}")
            m.propagation = value
        elif key == "bind-nonrecursive":
            m.recursive = not _bool(value, key, spec)
        elif key == "volume-nocopy":
            m.nocopy = _bool(value, key, spec)
        elif key in ("volume-label", "volume-opt"):
            k, eq, v = value.partition("=")
            if not k or (not eq and key == "volume-opt"):
                raise InvalidArgument(f"{bad}: invalid {key} {value!r}: expected key=value")
            (m.labels if key == "volume-label" else m.volume_opts)[k] = v
        elif key == "volume-driver":
            if value != "local":
                raise InvalidArgument(f'{bad}: volume driver {value!r} is not supported (only "local")')
        elif key == "tmpfs-size":
            m.tmpfs_options.append(f"size={parse_bytes(value, 'tmpfs-size')}")
        elif key == "tmpfs-mode":
            if not value or any(c not in "01234567" for c in value):
                raise InvalidArgument(f"{bad}: invalid tmpfs-mode {value!r}: expected octal like 1777")
            m.tmpfs_options.append(f"mode={int(value, 8):o}")
        elif key == "consistency":
            continue
        else:
            raise InvalidArgument(f"{bad}: unexpected key {key!r} in {key}={value}")
    return m


def parse_tmpfs(spec: str) -> MountSpec:
    """``--tmpfs /path[:opt,opt]``: the options are tmpfs's own (size=64m, mode=1777) and mount flags."""
    target, _, options = spec.partition(":")
    m = MountSpec("tmpfs", _check_target(target, spec, "tmpfs"), origin="--tmpfs")
    for opt in options.split(",") if options else []:
        key, eq, value = opt.partition("=")
        if (not eq and key in _TMPFS_FLAGS) or (eq and key in _TMPFS_DATA and value):
            m.tmpfs_options.append(opt)
        else:
            raise InvalidArgument(f"invalid --tmpfs option {opt!r} in {spec!r}")
    return m


def tmpfs_mount(m: MountSpec) -> dict[str, object]:
    """The OCI mount for a tmpfs spec; later options override earlier ones, so user flags win."""
    options = [*TMPFS_DEFAULTS, *m.tmpfs_options]
    if m.readonly:
        options.append("ro")
    return {"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": options}


def absolute_sources(volumes: list[str], mounts: list[str]) -> tuple[list[str], list[str]]:
    """The same -v/--mount values with relative bind sources made absolute against this process's cwd,
    so the options mean the same when another process (a daemon) turns them into mounts."""
    vols = []
    for spec in volumes:
        source, sep, rest = spec.partition(":")
        relative = sep and (source.startswith(("./", "../")) or source in (".", ".."))
        vols.append(f"{os.path.abspath(source)}:{rest}" if relative else spec)
    out = []
    for spec in mounts:
        fields = _csv_fields(spec)
        if any(f.replace(" ", "") == "type=bind" for f in fields):
            for i, field in enumerate(fields):
                key, eq, value = field.partition("=")
                if eq and key.strip().lower() in ("source", "src") and value and not value.startswith("/"):
                    fields[i] = f"{key}={os.path.abspath(value)}"
            spec = ",".join(f'"{f}"' if "," in f else f for f in fields)
        out.append(spec)
    return vols, out


def all_specs(volumes: list[str], mounts: list[str], tmpfs: list[str]) -> list[MountSpec]:
    """Every requested mount, -v first then --mount then --tmpfs; two on one target is an error."""
    specs = [*map(parse_volume, volumes), *map(parse_mount, mounts), *map(parse_tmpfs, tmpfs)]
    seen: set[str] = set()
    for m in specs:
        if m.target in seen:
            raise InvalidArgument(f"duplicate mount point: {m.target}")
        seen.add(m.target)
    return specs

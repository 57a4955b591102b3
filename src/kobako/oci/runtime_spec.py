"""The OCI runtime config.json: loading, validation and the default spec (``kobako-runtime spec``).

The spec stays a plain dict (the JSON as written) so the hot path pays no model-building cost; ``validate``
checks every field the runtime reads and names the offending field in its error.
"""

from __future__ import annotations

import os

from kobako.errors import InvalidArgument, NotFound
from kobako.oci import jsoncodec

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.0.2"
NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def load(bundle: str) -> dict[str, Any]:
    return load_with_raw(bundle)[0]


def load_with_raw(bundle: str) -> tuple[dict[str, Any], bytes]:
    """The validated spec and the bytes it was read from (kept as the container's copy)."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise NotFound(f"config.json not found in bundle {bundle!r}") from None
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from exc
    spec = jsoncodec.loads(raw, what=path)
    validate(spec)
    return spec, raw


def _fail(field: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"config.json: {field}: {problem}")


def _expect(value: Any, kind: type | tuple[type, ...], field: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _fail(field, f"must be {name}, got {type(value).__name__}")
    return value


def _str_list(value: Any, field: str) -> list[str]:
    _expect(value, list, field)
    for i, item in enumerate(value):
        _expect(item, str, f"{field}[{i}]")
    return value


def validate(spec: Any) -> None:
    """Check the fields the runtime relies on; raise InvalidArgument naming the first bad one."""
    _expect(spec, dict, "config")
    _expect(spec.get("ociVersion"), str, "ociVersion")
    root = _expect(spec.get("root"), dict, "root")
    _expect(root.get("path"), str, "root.path")
    _expect(root.get("readonly", False), bool, "root.readonly")
    _validate_process(spec.get("process"), "process", need_args=True)
    _expect(spec.get("hostname", ""), str, "hostname")
    _expect(spec.get("domainname", ""), str, "domainname")
    for i, m in enumerate(_expect(spec.get("mounts", []), list, "mounts")):
        _expect(m, dict, f"mounts[{i}]")
        _expect(m.get("destination"), str, f"mounts[{i}].destination")
        if not m["destination"].startswith("/"):
            raise _fail(f"mounts[{i}].destination", f"must be absolute, got {m['destination']!r}")
        _expect(m.get("type", ""), str, f"mounts[{i}].type")
        _expect(m.get("source", ""), str, f"mounts[{i}].source")
        _str_list(m.get("options", []), f"mounts[{i}].options")
    hooks = _expect(spec.get("hooks", {}), dict, "hooks")
    for kind, entries in hooks.items():
        if kind not in HOOK_KINDS:
            raise _fail(f"hooks.{kind}", "unknown hook kind")
        for i, hook in enumerate(_expect(entries, list, f"hooks.{kind}")):
            _expect(hook, dict, f"hooks.{kind}[{i}]")
            _expect(hook.get("path"), str, f"hooks.{kind}[{i}].path")
            _str_list(hook.get("args", []), f"hooks.{kind}[{i}].args")
            _str_list(hook.get("env", []), f"hooks.{kind}[{i}].env")
            _expect(hook.get("timeout", 1), int, f"hooks.{kind}[{i}].timeout")
            if hook.get("timeout", 1) <= 0:
                raise _fail(f"hooks.{kind}[{i}].timeout", "must be positive")
    linux = _expect(spec.get("linux", {}), dict, "linux")
    _validate_linux(linux)


def _validate_process(proc: Any, field: str, need_args: bool) -> None:
    _expect(proc, dict, field)
    args = _str_list(proc.get("args", []), f"{field}.args")
    if need_args and not args:
        raise _fail(f"{field}.args", "must name a program to run")
    _str_list(proc.get("env", []), f"{field}.env")
    cwd = _expect(proc.get("cwd", "/"), str, f"{field}.cwd")
    if not cwd.startswith("/"):
        raise _fail(f"{field}.cwd", f"must be absolute, got {cwd!r}")
    _expect(proc.get("terminal", False), bool, f"{field}.terminal")
    user = _expect(proc.get("user", {}), dict, f"{field}.user")
    for key in ("uid", "gid"):
        value = _expect(user.get(key, 0), int, f"{field}.user.{key}")
        if value < 0:
            raise _fail(f"{field}.user.{key}", "must not be negative")
    for i, g in enumerate(_expect(user.get("additionalGids", []), list, f"{field}.user.additionalGids")):
        _expect(g, int, f"{field}.user.additionalGids[{i}]")
    caps = _expect(proc.get("capabilities", {}), dict, f"{field}.capabilities")
    for key, names in caps.items():
        _str_list(names, f"{field}.capabilities.{key}")
    for i, rl in enumerate(_expect(proc.get("rlimits", []), list, f"{field}.rlimits")):
        _expect(rl, dict, f"{field}.rlimits[{i}]")
        _expect(rl.get("type"), str, f"{field}.rlimits[{i}].type")
        _expect(rl.get("soft"), int, f"{field}.rlimits[{i}].soft")
        _expect(rl.get("hard"), int, f"{field}.rlimits[{i}].hard")
    _expect(proc.get("noNewPrivileges", False), bool, f"{field}.noNewPrivileges")
    if "oomScoreAdj" in proc:
        score = _expect(proc["oomScoreAdj"], int, f"{field}.oomScoreAdj")
        if not -1000 <= score <= 1000:
            raise _fail(f"{field}.oomScoreAdj", f"must be within -1000..1000, got {score}")


def validate_process(proc: Any) -> None:
    """Validate a process.json given to ``exec --process``."""
    _validate_process(proc, "process", need_args=True)


def _validate_linux(linux: dict[str, Any]) -> None:
    seen: set[str] = set()
    for i, ns in enumerate(_expect(linux.get("namespaces", []), list, "linux.namespaces")):
        _expect(ns, dict, f"linux.namespaces[{i}]")
        kind = _expect(ns.get("type"), str, f"linux.namespaces[{i}].type")
        if kind not in NAMESPACE_TYPES:
            raise _fail(f"linux.namespaces[{i}].type", f"unknown namespace type {kind!r}")
        if kind in seen:
            raise _fail(f"linux.namespaces[{i}].type", f"namespace {kind!r} listed twice")
        seen.add(kind)
        _expect(ns.get("path", ""), str, f"linux.namespaces[{i}].path")
    for key in ("uidMappings", "gidMappings"):
        for i, m in enumerate(_expect(linux.get(key, []), list, f"linux.{key}")):
            _expect(m, dict, f"linux.{key}[{i}]")
            for part in ("containerID", "hostID", "size"):
                _expect(m.get(part), int, f"linux.{key}[{i}].{part}")
    if (linux.get("uidMappings") or linux.get("gidMappings")) and "user" not in seen:
        raise _fail("linux.uidMappings", "mappings need a user namespace")
    _expect(linux.get("cgroupsPath", ""), str, "linux.cgroupsPath")
    _expect(linux.get("resources", {}), dict, "linux.resources")
    for i, d in enumerate(_expect(linux.get("devices", []), list, "linux.devices")):
        _expect(d, dict, f"linux.devices[{i}]")
        _expect(d.get("path"), str, f"linux.devices[{i}].path")
        if d.get("type") not in ("c", "b", "u", "p"):
            raise _fail(f"linux.devices[{i}].type", f"must be c, b, u or p, got {d.get('type')!r}")
    _str_list(linux.get("maskedPaths", []), "linux.maskedPaths")
    _str_list(linux.get("readonlyPaths", []), "linux.readonlyPaths")
    sysctl = _expect(linux.get("sysctl", {}), dict, "linux.sysctl")
    for key, value in sysctl.items():
        _expect(value, str, f"linux.sysctl.{key}")
        if "/" in key or ".." in key:
            raise _fail(f"linux.sysctl.{key}", "not a sysctl name")
    prop = linux.get("rootfsPropagation", "")
    if prop not in (
        "",
        "private",
        "rprivate",
        "slave",
        "rslave",
        "shared",
        "rshared",
        "unbindable",
        "runbindable",
    ):
        raise _fail("linux.rootfsPropagation", f"unknown propagation {prop!r}")
    if "seccomp" in linux:
        _expect(linux["seccomp"], dict, "linux.seccomp")


def default_spec(rootless: bool = False, args: list[str] | None = None) -> dict[str, Any]:
    """The spec ``kobako-runtime spec`` writes: runc's defaults, secure like Podman's."""
    caps = list(DEFAULT_CAPS)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "kobako",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }
    if rootless:
        uid, gid = os.geteuid(), os.getegid()
        linux = spec["linux"]
        linux["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup", "user")]
        linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
        del linux["resources"]
        mounts = spec["mounts"]
        for m in mounts:
            if m["destination"] == "/dev/pts":
                m["options"] = [o for o in m["options"] if o != "gid=5"]
            if m["destination"] == "/sys":
                m.update(
                    {
                        "type": "none",
                        "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
                    }
                )
        spec["mounts"] = [m for m in mounts if m["destination"] != "/sys/fs/cgroup"]
    return spec

"""Run options + image config → a complete OCI config.json, with Podman's secure defaults.

    mounts = volumes.volume_mounts(opts, image_config, rootfs, store, cid)
    spec = specgen.generate(cid, image_config, opts, rootfs, mounts, userdata_dir)

``rootfs`` is the container's prepared (mounted) root; users are resolved from its /etc files.
``extra_mounts`` are the -v/--mount binds and volumes; tmpfs mounts (--tmpfs, --mount type=tmpfs) are
made here. What an unprivileged container gets, and what ``--privileged`` lifts, is listed in
defaults.py. ``image_config`` may be the whole OCI image config or just its ``config`` section.
"""

from __future__ import annotations

import os

from kobako.engine import defaults, etcfiles, users
from kobako.engine.mountspecs import all_specs, tmpfs_mount
from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.runopts import RunOptions

OCI_VERSION = "1.0.2"
INIT_ANNOTATION = "org.kobako.init"
_RLIM_INFINITY = (1 << 64) - 1  # the OCI spec's uint64 "unlimited"


def image_section(image_config: dict) -> dict:
    """The ``config`` part of an OCI image config (Env, Cmd, User...), whichever form was passed."""
    inner = image_config.get("config")
    return inner if isinstance(inner, dict) else image_config


def generate(container_id: str, image_config: dict, opts: RunOptions, rootfs: str, extra_mounts: list[dict],
             userdata_dir: str, *, netns_path: str = "", warnings: list[str] | None = None) -> dict:  # fmt: skip
    """The OCI spec for one container. ``netns_path`` joins an existing network namespace (container:ID
    networking); ``warnings`` collects what was adjusted to the host (e.g. no swap accounting)."""
    img = image_section(image_config)
    warn = warnings if warnings is not None else []
    host_network = opts.network == "host"
    hostname = opts.hostname or (os.uname().nodename if host_network else container_id[:12])

    user = users.resolve(rootfs, opts.user or img.get("User") or "", opts.group_add)
    caps = capabilities(opts, user.uid)
    process = {
        "terminal": opts.tty,
        "user": {"uid": user.uid, "gid": user.gid, "umask": defaults.UMASK,
                 **({"additionalGids": user.additional_gids} if user.additional_gids else {})},
        "args": process_args(img, opts),
        "env": environment(img, opts, hostname, user.home),
        "cwd": _workdir(img, opts),
        "capabilities": caps,
        "rlimits": rlimits(opts.ulimits),
        "noNewPrivileges": opts.no_new_privileges,
    }  # fmt: skip

    linux: dict[str, object] = {
        "cgroupsPath": f"{defaults.CGROUP_PARENT}/{container_id}",
        "namespaces": _namespaces(opts, netns_path),
        "resources": resources(opts, warn),
    }
    if not host_network and not netns_path:  # sysctls of a shared netns belong to its owner
        linux["sysctl"] = dict(defaults.NETNS_SYSCTLS)
    seccomp = _seccomp(opts, caps["bounding"])
    if seccomp is not None:
        linux["seccomp"] = seccomp
    if opts.privileged:
        from kobako.engine.devices import host_devices

        linux["devices"] = host_devices()
    elif not opts.systempaths_unconfined:
        linux["maskedPaths"] = list(defaults.MASKED_PATHS)
        linux["readonlyPaths"] = list(defaults.READONLY_PATHS)

    annotations = {"org.kobako.container.id": container_id}
    if opts.name:
        annotations["org.kobako.container.name"] = opts.name
    if opts.init:
        annotations[INIT_ANNOTATION] = "true"
    spec: dict[str, object] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": opts.read_only},
        "hostname": hostname,
        "mounts": mounts(opts, extra_mounts, etcfiles.write_all(userdata_dir, opts, hostname)),
        "annotations": annotations,
        "linux": linux,
    }
    if opts.domainname:
        spec["domainname"] = opts.domainname
    return spec


def process_args(img: dict, opts: RunOptions) -> list[str]:
    """Docker's rules: --entrypoint replaces the image's and drops its Cmd; a command replaces Cmd."""
    if opts.entrypoint is not None:
        args = ([opts.entrypoint] if opts.entrypoint else []) + list(opts.command)
    else:
        args = list(img.get("Entrypoint") or []) + list(opts.command or img.get("Cmd") or [])
    if not args:
        raise InvalidArgument(
            "no command specified: the image has no Entrypoint or Cmd, give one after the image"
        )
    return args


def environment(img: dict, opts: RunOptions, hostname: str, home: str) -> list[str]:
    """PATH (if the image has none), HOSTNAME, TERM (with -t), the image's Env, then -e/--env-file; HOME from
    passwd unless set. Later entries replace earlier ones of the same name, keeping the first position."""
    env: dict[str, str] = {"PATH": defaults.DEFAULT_PATH, "HOSTNAME": hostname}
    if opts.tty:
        env["TERM"] = "xterm"
    for entry in [*(img.get("Env") or []), *opts.env]:
        key, sep, value = entry.partition("=")
        if sep and key:
            env[key] = value
    env.setdefault("HOME", home or "/")
    return [f"{k}={v}" for k, v in env.items()]


def _workdir(img: dict, opts: RunOptions) -> str:
    cwd = opts.workdir or img.get("WorkingDir") or "/"
    return os.path.normpath("/" + cwd) if not cwd.startswith("/") else os.path.normpath(cwd)


# Podman's default set in capability-number order: what the arithmetic below yields when no flag changes
# it, without importing the runtime's capability table (tests check the two agree).
DEFAULT_BOUNDING = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP",
)  # fmt: skip


def capabilities(opts: RunOptions, uid: int) -> dict[str, list[str]]:
    """Docker's cap-add/cap-drop arithmetic on Podman's default set; Podman's per-set placement."""
    if not (opts.privileged or opts.cap_add or opts.cap_drop):
        return _placed(list(DEFAULT_BOUNDING), opts, uid, [])
    from kobako.runtime.security.capabilities import CAPABILITIES, last_cap

    known = [name for name, number in CAPABILITIES.items() if number <= last_cap()]
    if opts.privileged:
        caps = known
    elif "ALL" in opts.cap_add:
        caps = [c for c in known if c not in opts.cap_drop]
    elif "ALL" in opts.cap_drop:
        caps = [c for c in opts.cap_add if c in known]
    else:
        caps = [c for c in defaults.CAPABILITIES if c not in opts.cap_drop]
        caps += [c for c in opts.cap_add if c not in caps and c in known]
    return _placed(sorted(set(caps), key=CAPABILITIES.__getitem__), opts, uid, known)


def _placed(bounding: list[str], opts: RunOptions, uid: int, known: list[str]) -> dict[str, list[str]]:
    if uid == 0:
        # Root uses the set; nothing is inheritable, so an exec'd file cannot gain caps by fI bits.
        return {
            "bounding": bounding,
            "effective": bounding,
            "permitted": bounding,
            "inheritable": [],
            "ambient": [],
        }
    # Another user starts with no capabilities, only those explicitly added (as ambient ones, so they
    # survive execve of an ordinary binary), as Podman does; --privileged alone grants a non-root user none.
    added = known if "ALL" in opts.cap_add else opts.cap_add
    granted = [c for c in bounding if c in added]
    return {"bounding": bounding, "effective": granted, "permitted": granted, "inheritable": granted,
            "ambient": granted}  # fmt: skip


def rlimits(ulimits: dict[str, list[int]]) -> list[dict[str, object]]:
    """--ulimit values over Podman's defaults, each clamped to this host's hard limit (and soft ≤ hard)."""
    import resource

    wanted: dict[str, tuple[int, int]] = {k: (v, v) for k, v in defaults.RLIMITS.items()}
    for name, (soft, hard) in ulimits.items():
        wanted["RLIMIT_" + name.upper()] = (soft, hard)
    out = []
    for kind, (soft, hard) in wanted.items():
        host_hard = resource.getrlimit(getattr(resource, kind))[1]
        limit = _RLIM_INFINITY if host_hard == resource.RLIM_INFINITY else host_hard
        hard = limit if hard < 0 else min(hard, limit)
        soft = hard if soft < 0 else min(soft, hard)
        out.append({"type": kind, "soft": soft, "hard": hard})
    return out


def resources(opts: RunOptions, warn: list[str]) -> dict[str, object]:
    res: dict[str, object] = {}
    if opts.privileged:
        res["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        res["devices"] = [{"allow": False, "access": "rwm"}]  # the runtime allows the standard devices
    if opts.memory:
        memory: dict[str, int] = {"limit": opts.memory}
        swap = opts.memory_swap or 2 * opts.memory  # docker: as much swap as memory unless told
        if _swap_accounting():
            memory["swap"] = swap
        elif opts.memory_swap:
            warn.append(
                "the kernel does not account swap: --memory-swap ignored, memory limited without swap"
            )
        res["memory"] = memory
    cpu: dict[str, object] = {}
    if opts.cpus:
        cpu.update(period=100000, quota=round(opts.cpus * 100000))
    if opts.cpu_shares:
        cpu["shares"] = opts.cpu_shares
    if opts.cpuset_cpus:
        cpu["cpus"] = opts.cpuset_cpus
    if cpu:
        res["cpu"] = cpu
    pids = defaults.PIDS_LIMIT if opts.pids_limit is None else opts.pids_limit
    if pids > 0:
        res["pids"] = {"limit": pids}
    return res


def _swap_accounting() -> bool:
    from kobako.cgroups import detect

    if detect() != "v2":
        return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
    try:
        with open("/proc/self/cgroup") as f:
            own = next((line.split(":", 2)[2].strip() for line in f if line.startswith("0::")), "/")
    except OSError:
        own = "/"
    return os.path.exists(f"/sys/fs/cgroup{own.rstrip('/')}/memory.swap.max") or os.path.exists(
        "/sys/fs/cgroup/system.slice/memory.swap.max"
    )


def _namespaces(opts: RunOptions, netns_path: str) -> list[dict[str, str]]:
    spaces = [{"type": t} for t in ("pid", "mount", "ipc", "uts", "cgroup")]
    if opts.network != "host":
        spaces.append({"type": "network", "path": netns_path} if netns_path else {"type": "network"})
    return spaces


def _seccomp(opts: RunOptions, bounding: list[str]) -> dict | None:
    if opts.privileged or opts.seccomp_unconfined:
        return None  # as docker: --privileged runs unfiltered even with a profile given
    if opts.seccomp_profile is not None:
        from kobako.engine.seccomp import from_docker

        return from_docker(opts.seccomp_profile, bounding)
    from kobako.runtime.security.default_seccomp import default_profile

    return default_profile(bounding)


def mounts(opts: RunOptions, extra: list[dict], etc_files: dict[str, str]) -> list[dict]:
    """Kernel filesystems, then /etc files, then user mounts sorted parents-first (stable, as docker).
    A user mount on a default destination replaces the default."""
    tmpfs = [tmpfs_mount(m) for m in all_specs(opts.volumes, opts.mounts, opts.tmpfs) if m.kind == "tmpfs"]
    user = sorted([*extra, *tmpfs], key=lambda m: _depth(m["destination"]))
    taken = {os.path.normpath(m["destination"]) for m in user}
    etc_options = ["rbind", "rprivate", *(["ro"] if opts.read_only else [])]
    base = defaults.base_mounts(opts.privileged, opts.shm_size or defaults.SHM_SIZE)
    base += [{"destination": dst, "type": "bind", "source": src, "options": list(etc_options)}
             for dst, src in etc_files.items()]  # fmt: skip
    return [m for m in base if m["destination"] not in taken] + user


def _depth(path: str) -> int:
    return len([p for p in os.path.normpath(path).split("/") if p])

"""``kobako run``/``create`` options: docker's flags and semantics, parsed into a plain :class:`RunOptions`.

    opts, image, cmd = parse_run_args(["--rm", "-e", "A=1", "-v", "data:/data", "busybox", "sh"])

Flags stop at the image argument; everything after it is the command. Every bad value raises
InvalidArgument naming the flag and the value. Files named by flags (--env-file, --label-file, a seccomp
profile) are read here, as docker's client does, so the options are self-contained once parsed.
``RunOptions.to_dict``/``from_dict`` give the JSON form the engine keeps in a container record.
"""

from __future__ import annotations

import os

from kobako.engine import envfiles, netopts, secopts, sizes
from kobako.engine.mountspecs import absolute_sources, all_specs
from kobako.engine.runflags import RUN_FLAGS
from kobako.errors import InvalidArgument

ULIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
           "rss", "rtprio", "rttime", "sigpending", "stack")  # fmt: skip
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
_MIN_MEMORY = 6 << 20  # docker's floor: below it the runtime itself cannot start


class RestartPolicy:
    def __init__(self, name: str = "no", max_retries: int = 0) -> None:
        self.name = name
        self.max_retries = max_retries

    def __repr__(self) -> str:
        return f"RestartPolicy({self.name!r}, {self.max_retries})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RestartPolicy) and (self.name, self.max_retries) == (
            other.name,
            other.max_retries,
        )


class HealthConfig:
    """Docker's Healthcheck with durations in seconds; 0 means "inherit from the image or the default".
    ``test`` is [] (inherit), ["NONE"], ["CMD", argv...] or ["CMD-SHELL", command]."""

    def __init__(self, test: list[str] | None = None, interval: float = 0.0, timeout: float = 0.0,
                 retries: int = 0, start_period: float = 0.0) -> None:  # fmt: skip
        self.test = list(test or [])
        self.interval = interval
        self.timeout = timeout
        self.retries = retries
        self.start_period = start_period

    def to_dict(self) -> dict[str, object]:
        return {"test": self.test, "interval": self.interval, "timeout": self.timeout,
                "retries": self.retries, "start_period": self.start_period}  # fmt: skip

    @classmethod
    def from_image(cls, hc: dict[str, object]) -> HealthConfig:
        """From an image config's ``Healthcheck`` (durations in nanoseconds)."""
        ns = 1e-9
        return cls(list(hc.get("Test") or []), float(hc.get("Interval") or 0) * ns,  # type: ignore[arg-type]
                   float(hc.get("Timeout") or 0) * ns, int(hc.get("Retries") or 0),  # type: ignore[arg-type]
                   float(hc.get("StartPeriod") or 0) * ns)  # type: ignore[arg-type]  # fmt: skip

    def __repr__(self) -> str:
        return f"HealthConfig({self.to_dict()})"


class RunOptions:
    """Plain attributes (no dataclass: it imports ``re`` and ``inspect``). Defaults mean "not given"."""

    def __init__(self) -> None:
        self.name = ""
        self.image = ""
        self.command: list[str] = []
        self.detach = self.rm = self.interactive = self.tty = False
        self.env: list[str] = []  # "K=V", --env-file entries first, then -e in order (later wins)
        self.env_files: list[str] = []
        self.workdir = ""
        self.user = ""
        self.group_add: list[str] = []
        self.entrypoint: str | None = None  # None: the image's; "": cleared
        self.volumes: list[str] = []  # raw -v values, validated; see mountspecs.all_specs
        self.mounts: list[str] = []  # raw --mount values
        self.tmpfs: list[str] = []  # raw --tmpfs values
        self.read_only = False
        self.hostname = ""
        self.domainname = ""
        self.network = "bridge"
        # Whether the network was asked for (--network, or KOBAKO_DEFAULT_NETWORK=bridge): only then does
        # the engine make real networking for bridge/NAME; an unasked default stays an isolated namespace.
        self.network_explicit = False
        self.networks: list[str] = []  # further --network values, connected after start
        self.ip = ""
        self.aliases: list[str] = []
        self.publish: list[str] = []
        self.publish_all = False
        self.add_hosts: list[str] = []
        self.dns: list[str] = []
        self.dns_search: list[str] = []
        self.dns_options: list[str] = []
        self.memory = 0  # bytes; 0 = unlimited
        self.memory_swap = 0  # memory+swap bytes; 0 = default, -1 = unlimited swap
        self.shm_size = 0  # bytes; 0 = 64m
        self.cpus = 0.0
        self.cpu_shares = 0
        self.cpuset_cpus = ""
        self.pids_limit: int | None = None  # None = the default limit, -1 = unlimited
        self.ulimits: dict[str, list[int]] = {}  # "nofile": [soft, hard]; -1 = unlimited
        self.cap_add: list[str] = []  # "CAP_X" or "ALL"
        self.cap_drop: list[str] = []
        self.security_opts: list[str] = []
        self.seccomp_unconfined = False
        self.seccomp_profile: dict[str, object] | None = None  # a Docker-format profile read from a file
        self.no_new_privileges = False
        self.systempaths_unconfined = False
        self.privileged = False
        self.restart = RestartPolicy()
        self.healthcheck: HealthConfig | None = None
        self.no_healthcheck = False
        self.init = False
        self.labels: dict[str, str] = {}
        self.label_files: list[str] = []
        self.stop_signal = ""
        self.stop_timeout: int | None = None
        self.attach: list[str] = []  # "stdin", "stdout", "stderr"
        self.help = False

    def to_dict(self) -> dict[str, object]:
        out = dict(vars(self))
        out["restart"] = {"name": self.restart.name, "max_retries": self.restart.max_retries}
        out["healthcheck"] = self.healthcheck.to_dict() if self.healthcheck else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RunOptions:
        opts = cls()
        for key, value in data.items():
            if key == "restart":
                opts.restart = RestartPolicy(**value)  # type: ignore[arg-type]
            elif key == "healthcheck":
                opts.healthcheck = HealthConfig(**value) if value else None  # type: ignore[arg-type]
            elif hasattr(opts, key):  # unknown keys: a record written by a newer kobako
                setattr(opts, key, value)
        return opts


def parse_run_args(argv: list[str]) -> tuple[RunOptions, str, list[str]]:
    """Parse ``run``/``create`` arguments into (options, image reference, command)."""
    flags, rest = RUN_FLAGS.parse(argv, stop_at_positional=True)
    o = RunOptions()
    o.help = bool(flags.help)
    if o.help:
        return o, "", []
    if not rest:
        raise InvalidArgument('"kobako run" requires at least 1 argument: IMAGE [COMMAND] [ARG...]')
    o.image, o.command = rest[0], rest[1:]
    for key in ("detach", "rm", "interactive", "tty", "read_only", "privileged", "init", "no_healthcheck"):
        setattr(o, key, bool(flags[key]))
    if flags.name is not None:
        from kobako.engine import names

        o.name = names.check(flags.name)
    _parse_env_and_labels(o, flags)
    if flags.workdir:
        if not flags.workdir.startswith("/"):
            raise InvalidArgument(
                f"the working directory {flags.workdir!r} is invalid, it needs to be an absolute path"
            )
        o.workdir = os.path.normpath(flags.workdir)
    if flags.user is not None:
        if not flags.user or flags.user.startswith(":") or flags.user.endswith(":"):
            raise InvalidArgument(f"invalid --user {flags.user!r}: expected USER[:GROUP]")
        o.user = flags.user
    o.group_add = list(flags.group_add)
    o.entrypoint = flags.entrypoint
    o.volumes, o.mounts = absolute_sources(flags.volume, flags.mount)
    o.tmpfs = list(flags.tmpfs)
    all_specs(o.volumes, o.mounts, o.tmpfs)  # validate now; volumes.py and specgen.py parse again
    _parse_network(o, flags)
    _parse_resources(o, flags)
    secopts.parse_security(o, flags)
    _parse_lifecycle(o, flags)
    return o, o.image, o.command


def _parse_env_and_labels(o: RunOptions, flags: dict) -> None:
    o.env_files = list(flags["env_file"])
    for path in o.env_files:
        o.env.extend(envfiles.env_from_file(path))
    for item in flags["env"]:
        entry = envfiles.env_entry(item)
        if entry is not None:
            o.env.append(entry)
    o.label_files = list(flags["label_file"])
    for path in o.label_files:
        o.labels.update(envfiles.labels_from_file(path))
    o.labels.update(envfiles.label_pair(item) for item in flags["label"])


def _parse_network(o: RunOptions, flags: dict) -> None:
    given = [netopts.check_network(n) for n in flags["network"]]
    # Docker's and Podman's default is the bridge network; KOBAKO_DEFAULT_NETWORK=none changes it (the
    # test suite does, so no test touches the host's interfaces without its own network namespace).
    default = os.environ.get("KOBAKO_DEFAULT_NETWORK", "bridge")
    if given:
        o.network, o.networks, o.network_explicit = given[0], given[1:], True
    elif default:
        o.network, o.network_explicit = netopts.check_network(default), True
    if o.networks and not all(netopts.is_named(n) for n in [o.network, *o.networks]):
        raise InvalidArgument("only bridge or named networks can be combined in several --network flags")
    if flags["ip"] is not None:
        if not netopts.is_ip(flags["ip"]) or ":" in flags["ip"]:
            raise InvalidArgument(f"invalid --ip {flags['ip']!r}: not an IPv4 address")
        o.ip = flags["ip"]
    o.aliases = [netopts.check_hostname(a, "--network-alias") for a in flags["network_alias"]]
    o.publish_all = bool(flags["publish_all"])
    if flags["hostname"] is not None:
        # As docker's client: "web.example.com" is host name "web" in domain "example.com".
        host, _, domain = netopts.check_hostname(flags["hostname"]).partition(".")
        o.hostname, o.domainname = host, domain
    o.publish = [netopts.check_publish(p) for p in flags["publish"]]
    o.add_hosts = [netopts.check_add_host(h) for h in flags["add_host"]]
    o.dns = [netopts.check_dns(d) for d in flags["dns"]]
    o.dns_search, o.dns_options = list(flags["dns_search"]), list(flags["dns_option"])
    if o.network == "host" and o.publish:
        o.publish = []  # docker: published ports are discarded in host network mode


def _parse_resources(o: RunOptions, flags: dict) -> None:
    if flags["memory"] is not None:
        o.memory = sizes.parse_bytes(flags["memory"], "--memory")
        if 0 < o.memory < _MIN_MEMORY:
            raise InvalidArgument(
                f"invalid --memory {flags['memory']!r}: minimum memory limit allowed is 6MB"
            )
    if flags["memory_swap"] is not None:
        raw = flags["memory_swap"]
        o.memory_swap = -1 if raw.strip() == "-1" else sizes.parse_bytes(raw, "--memory-swap")
        if not o.memory:
            raise InvalidArgument("--memory-swap needs --memory: set the memory limit too")
        if 0 < o.memory_swap < o.memory:
            raise InvalidArgument(
                f"invalid --memory-swap {raw!r}: must be at least --memory (memory plus swap)"
            )
    if flags["shm_size"] is not None:
        o.shm_size = sizes.parse_bytes(flags["shm_size"], "--shm-size")
        if o.shm_size <= 0:
            raise InvalidArgument(f"invalid --shm-size {flags['shm_size']!r}: must be greater than 0")
    if flags["cpus"] is not None:
        o.cpus = sizes.parse_float(flags["cpus"], "--cpus")
        ncpu = os.cpu_count() or 1
        if o.cpus and not 0.01 <= o.cpus <= ncpu:
            raise InvalidArgument(
                f"invalid --cpus {flags['cpus']!r}: range of CPUs is from 0.01 to {ncpu}.00, "
                f"as there are only {ncpu} CPUs available"
            )
    if flags["cpu_shares"] is not None:
        o.cpu_shares = sizes.parse_int(flags["cpu_shares"], "--cpu-shares", minimum=0)
    if flags["cpuset_cpus"] is not None:
        sizes.parse_cpuset(flags["cpuset_cpus"], "--cpuset-cpus")
        o.cpuset_cpus = flags["cpuset_cpus"].replace(" ", "")
    if flags["pids_limit"] is not None:
        limit = sizes.parse_int(flags["pids_limit"], "--pids-limit", minimum=-1)
        o.pids_limit = -1 if limit <= 0 else limit  # docker: 0 and -1 both mean unlimited
    for item in flags["ulimit"]:
        name, soft, hard = _ulimit(item)
        o.ulimits[name] = [soft, hard]


def _ulimit(item: str) -> tuple[str, int, int]:
    name, eq, values = item.partition("=")
    if not eq or name not in ULIMITS:
        raise InvalidArgument(
            f"invalid --ulimit {item!r}: expected NAME=SOFT[:HARD] with NAME one of {', '.join(ULIMITS)}"
        )
    soft_s, _, hard_s = values.partition(":")
    soft = sizes.parse_int(soft_s, f"--ulimit {name}", minimum=-1)
    hard = sizes.parse_int(hard_s, f"--ulimit {name}", minimum=-1) if hard_s else soft
    if hard != -1 and (soft == -1 or soft > hard):
        raise InvalidArgument(
            f"invalid --ulimit {item!r}: soft limit must be less than or equal to hard limit"
        )
    return name, soft, hard


def _parse_lifecycle(o: RunOptions, flags: dict) -> None:
    if flags["restart"] is not None:
        o.restart = _restart(flags["restart"])
    if o.rm and o.restart.name != "no":
        raise InvalidArgument("conflicting options: --restart and --rm")
    o.healthcheck = _healthcheck(flags)
    if flags["stop_signal"] is not None:
        from kobako.runtime import signals

        signals.parse(flags["stop_signal"])
        o.stop_signal = flags["stop_signal"]
    if flags["stop_timeout"] is not None:
        o.stop_timeout = sizes.parse_int(flags["stop_timeout"], "--stop-timeout", minimum=-1)
    for stream in flags["attach"]:
        low = stream.lower()
        if low not in ("stdin", "stdout", "stderr"):
            raise InvalidArgument(
                f"invalid argument {stream!r} for --attach: valid streams are STDIN, STDOUT and STDERR"
            )
        if low not in o.attach:
            o.attach.append(low)
    if o.attach and o.detach:
        raise InvalidArgument("conflicting options: -a and -d")


def _restart(value: str) -> RestartPolicy:
    name, sep, count = value.partition(":")
    if name not in RESTART_POLICIES:
        raise InvalidArgument(
            f"invalid restart policy {value!r}: expected no, always, unless-stopped or on-failure[:N]"
        )
    if not sep:
        return RestartPolicy(name)
    if name != "on-failure":
        raise InvalidArgument(
            f"invalid restart policy {value!r}: maximum retry count cannot be used with {name!r}"
        )
    return RestartPolicy(name, sizes.parse_int(count, "--restart on-failure", minimum=0))


def _healthcheck(flags: dict) -> HealthConfig | None:
    keys = ("health_cmd", "health_interval", "health_timeout", "health_retries", "health_start_period")
    given = [k for k in keys if flags[k] is not None]
    if flags["no_healthcheck"]:
        if given:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return HealthConfig(["NONE"])
    if not given:
        return None
    hc = HealthConfig(["CMD-SHELL", flags["health_cmd"]] if flags["health_cmd"] else [])
    for key in ("interval", "timeout", "start_period"):
        raw = flags["health_" + key]
        if raw is not None:
            flag = "--health-" + key.replace("_", "-")
            seconds = sizes.parse_duration(raw, flag)
            if 0 < seconds < 0.001:
                raise InvalidArgument(f"invalid {flag} {raw!r}: cannot be less than 1ms")
            setattr(hc, key, seconds)
    if flags["health_retries"] is not None:
        hc.retries = sizes.parse_int(flags["health_retries"], "--health-retries", minimum=0)
    return hc


def effective_healthcheck(opts: RunOptions, image_config: dict[str, object]) -> HealthConfig | None:
    """Docker's merge: flags override the image's Healthcheck field by field; None or ["NONE"] = no checks."""
    inner = image_config.get("config") if isinstance(image_config.get("config"), dict) else image_config
    image_hc = inner.get("Healthcheck") if isinstance(inner, dict) else None  # type: ignore[union-attr]
    base = HealthConfig.from_image(image_hc) if isinstance(image_hc, dict) else None
    mine = opts.healthcheck
    if mine is None:
        merged = base
    elif base is None:
        merged = mine
    else:
        merged = HealthConfig(mine.test or base.test, mine.interval or base.interval, mine.timeout or base.timeout,
                              mine.retries or base.retries, mine.start_period or base.start_period)  # fmt: skip
    if merged is None or not merged.test or merged.test[0] == "NONE":
        return None
    return merged

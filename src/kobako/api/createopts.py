"""``POST /containers/create`` bodies (Docker's Config + HostConfig) → kobako's RunOptions.

Every field is type-checked first (a wrong type is a 400 naming the field). The values then go through
``parse_run_args`` as the flags `kobako run` would get, so the API and the CLI validate and mean the same;
what flags cannot carry (an Entrypoint list, Env and Labels verbatim, health durations in nanoseconds, an
inline seccomp profile) is set on the options afterwards. Unknown fields are ignored, as dockerd ignores them.
Nothing here reads a file of the server: bind sources must be absolute, seccomp profiles inline JSON.
"""

from __future__ import annotations

import json

from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.runopts import RunOptions


def _get(obj: dict, key: str, kinds: tuple[type, ...], where: str) -> object:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise InvalidArgument(f"invalid JSON: field {where}{key}: want {_names(kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise InvalidArgument(
            f"invalid JSON: field {where}{key}: want {_names(kinds)}, got {type(value).__name__}"
        )
    return value


def _names(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "a boolean", list: "a list", dict: "an object",
             float: "a number"}  # fmt: skip
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _strs(obj: dict, key: str, where: str = "") -> list[str] | None:
    """A list of strings; a lone string is a one-element list (Docker's StrSlice)."""
    value = _get(obj, key, (list, str), where)
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not all(isinstance(v, str) for v in items):  # type: ignore[union-attr]
        raise InvalidArgument(f"invalid JSON: field {where}{key}: want a list of strings")
    return list(items)  # type: ignore[arg-type]


def _str_map(obj: dict, key: str, where: str = "") -> dict[str, str]:
    value = _get(obj, key, (dict,), where) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):  # type: ignore[union-attr]
        raise InvalidArgument(f"invalid JSON: field {where}{key}: want an object of strings")
    return dict(value)  # type: ignore[arg-type]


def _int(obj: dict, key: str, where: str = "") -> int:
    value = _get(obj, key, (int,), where)
    return int(value or 0)  # type: ignore[arg-type]


def _flag(obj: dict, key: str, where: str = "") -> bool:
    return bool(_get(obj, key, (bool,), where))


def _check_bind(spec: str) -> None:
    source = spec.partition(":")[0]
    if ":" in spec and source and ("/" in source or source.startswith(".")) and not source.startswith("/"):
        raise InvalidArgument(f"invalid bind {spec!r}: the source must be an absolute path or a volume name")


def _mount(m: object) -> str:
    if not isinstance(m, dict):
        raise InvalidArgument("invalid JSON: field HostConfig.Mounts: want a list of objects")
    kind = _get(m, "Type", (str,), "Mounts.") or "volume"
    target = _get(m, "Target", (str,), "Mounts.")
    if not target:
        raise InvalidArgument("invalid mount: Target is required")
    source = _get(m, "Source", (str,), "Mounts.") or ""
    if kind == "bind" and not str(source).startswith("/"):
        raise InvalidArgument(f"invalid mount: bind source {source!r} must be an absolute path")
    fields = [f"type={kind}", f"target={target}"]
    if source:
        fields.append(f"source={source}")
    if _flag(m, "ReadOnly", "Mounts."):
        fields.append("readonly")
    for text in fields:
        if "," in text or '"' in text:
            raise InvalidArgument(f"invalid mount field {text!r}: commas and quotes are not allowed")
    return ",".join(fields)


def run_options(body: object, name: str) -> tuple[RunOptions, str, list[str], list[str] | None]:
    """(options, image, command, entrypoint as given or None)."""
    from kobako.engine.runopts import HealthConfig, parse_run_args

    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: the container config must be an object")
    host = _get(body, "HostConfig", (dict,), "") or {}
    image = _get(body, "Image", (str,), "")
    if not image:
        raise InvalidArgument("config has no Image: an image name is required")
    if str(image).startswith("-") or any(c.isspace() for c in str(image)):
        raise InvalidArgument(f"invalid reference format: {image!r}")
    argv: list[str] = [f"--name={name}"] if name else []
    for key, flag in (("Tty", "-t"), ("OpenStdin", "-i")):
        if _flag(body, key):
            argv.append(flag)
    for key, flag in (
        ("AutoRemove", "--rm"),
        ("Privileged", "--privileged"),
        ("ReadonlyRootfs", "--read-only"),
    ):
        if _flag(host, key, "HostConfig."):
            argv.append(flag)
    if _get(host, "Init", (bool,), "HostConfig."):
        argv.append("--init")
    hostname, domain = _get(body, "Hostname", (str,), ""), _get(body, "Domainname", (str,), "")
    if hostname:
        argv.append(f"--hostname={hostname}{'.' + str(domain) if domain else ''}")
    for key, flag in (("User", "--user"), ("WorkingDir", "--workdir"), ("StopSignal", "--stop-signal")):
        value = _get(body, key, (str,), "")
        if value:
            argv.append(f"{flag}={value}")
    if body.get("StopTimeout") is not None:
        argv.append(f"--stop-timeout={_int(body, 'StopTimeout')}")
    volumes = _get(body, "Volumes", (dict,), "") or {}
    argv += [f"--volume={target}" for target in volumes]  # type: ignore[union-attr]
    for spec in _strs(host, "Binds", "HostConfig.") or []:
        _check_bind(spec)
        argv.append(f"--volume={spec}")
    for m in _get(host, "Mounts", (list,), "HostConfig.") or []:  # type: ignore[union-attr]
        argv.append(f"--mount={_mount(m)}")
    for target, options in _str_map(host, "Tmpfs", "HostConfig.").items():
        argv.append(f"--tmpfs={target}:{options}" if options else f"--tmpfs={target}")
    argv += _network_args(host)
    argv += _resource_args(host)
    seccomp = None
    for opt in _strs(host, "SecurityOpt", "HostConfig.") or []:
        key, _, value = opt.partition("=")
        if key == "seccomp" and value.lstrip().startswith("{"):
            try:
                seccomp = json.loads(value)
            except ValueError as exc:
                raise InvalidArgument(f"invalid seccomp profile in SecurityOpt: {exc}") from None
            continue
        if key == "seccomp" and value not in ("unconfined", "builtin", "default"):
            raise InvalidArgument(
                "SecurityOpt seccomp= takes unconfined or an inline JSON profile, not a path"
            )
        argv.append(f"--security-opt={opt}")
    for key, flag in (("CapAdd", "--cap-add"), ("CapDrop", "--cap-drop"), ("GroupAdd", "--group-add")):
        argv += [f"{flag}={v}" for v in _strs(host, key, "HostConfig.") or []]
    policy = _get(host, "RestartPolicy", (dict,), "HostConfig.") or {}
    policy_name = _get(policy, "Name", (str,), "HostConfig.RestartPolicy.")  # type: ignore[arg-type]
    if policy_name and policy_name != "no":
        retries = _int(policy, "MaximumRetryCount", "HostConfig.RestartPolicy.")  # type: ignore[arg-type]
        argv.append(
            f"--restart={policy_name}{':' + str(retries) if retries and policy_name == 'on-failure' else ''}"
        )
    cmd = _strs(body, "Cmd") or []
    argv += ["--", str(image), *cmd]
    opts, image_ref, command = parse_run_args(argv)
    opts.env = [e for e in _strs(body, "Env") or [] if "=" in e and not e.startswith("=")]
    opts.labels = _str_map(body, "Labels")
    if seccomp is not None:
        if not isinstance(seccomp, dict):
            raise InvalidArgument("seccomp profile in SecurityOpt must be a JSON object")
        opts.seccomp_unconfined, opts.seccomp_profile = False, seccomp
    entrypoint = _strs(body, "Entrypoint")
    if entrypoint:
        opts.entrypoint = entrypoint[0]
        command = [*entrypoint[1:], *command]
        opts.command = command
    hc = _get(body, "Healthcheck", (dict,), "")
    if hc:
        test = _strs(hc, "Test", "Healthcheck.") or []  # type: ignore[arg-type]
        ns = 1e-9
        opts.healthcheck = HealthConfig(test, _int(hc, "Interval", "Healthcheck.") * ns,  # type: ignore[arg-type]
                                        _int(hc, "Timeout", "Healthcheck.") * ns,  # type: ignore[arg-type]
                                        _int(hc, "Retries", "Healthcheck."),  # type: ignore[arg-type]
                                        _int(hc, "StartPeriod", "Healthcheck.") * ns)  # type: ignore[arg-type]  # fmt: skip
    return opts, image_ref, command, entrypoint


def _network_args(host: dict) -> list[str]:
    argv = []
    mode = _get(host, "NetworkMode", (str,), "HostConfig.")
    if mode and mode != "default":
        argv.append(f"--network={mode}")
    bindings = _get(host, "PortBindings", (dict,), "HostConfig.") or {}
    for port, binds in bindings.items():  # type: ignore[union-attr]
        for b in binds or [{}]:
            if not isinstance(b, dict):
                raise InvalidArgument("invalid JSON: field HostConfig.PortBindings: want lists of objects")
            ip = _get(b, "HostIp", (str,), "PortBindings.") or ""
            hp = _get(b, "HostPort", (str,), "PortBindings.") or ""
            argv.append(f"--publish={ip + ':' if ip else ''}{hp + ':' if hp or ip else ''}{port}")
    for key, flag in (("ExtraHosts", "--add-host"), ("Dns", "--dns"), ("DnsSearch", "--dns-search"),
                      ("DnsOptions", "--dns-option")):  # fmt: skip
        argv += [f"{flag}={v}" for v in _strs(host, key, "HostConfig.") or []]
    return argv


def _resource_args(host: dict) -> list[str]:
    argv = []
    memory = _int(host, "Memory", "HostConfig.")
    if memory:
        argv.append(f"--memory={memory}")
        swap = _int(host, "MemorySwap", "HostConfig.")
        if swap:
            argv.append(f"--memory-swap={swap}")
    nano = _int(host, "NanoCpus", "HostConfig.")
    if nano:
        argv.append(f"--cpus={nano / 1e9}")
    for key, flag in (("CpuShares", "--cpu-shares"), ("ShmSize", "--shm-size")):
        value = _int(host, key, "HostConfig.")
        if value:
            argv.append(f"{flag}={value}")
    cpuset = _get(host, "CpusetCpus", (str,), "HostConfig.")
    if cpuset:
        argv.append(f"--cpuset-cpus={cpuset}")
    pids = _get(host, "PidsLimit", (int,), "HostConfig.")
    if pids:
        argv.append(f"--pids-limit={pids}")
    for u in _get(host, "Ulimits", (list,), "HostConfig.") or []:  # type: ignore[union-attr]
        if not isinstance(u, dict):
            raise InvalidArgument("invalid JSON: field HostConfig.Ulimits: want a list of objects")
        name = _get(u, "Name", (str,), "Ulimits.")
        argv.append(f"--ulimit={name}={_int(u, 'Soft', 'Ulimits.')}:{_int(u, 'Hard', 'Ulimits.')}")
    return argv

"""`kobako run` flags: the forms docker accepts, the values they produce, and the errors for bad ones."""

from __future__ import annotations

import json

import pytest

from kobako.engine.runopts import (
    HealthConfig,
    RestartPolicy,
    RunOptions,
    effective_healthcheck,
    parse_run_args,
)
from kobako.errors import InvalidArgument


def parse(*argv: str) -> RunOptions:
    opts, image, _cmd = parse_run_args([*argv, "busybox"])
    assert image == "busybox"
    return opts


def test_image_and_command_split_at_the_first_positional() -> None:
    opts, image, cmd = parse_run_args(["--rm", "-it", "busybox", "sh", "-c", "echo -v --rm"])
    assert (image, cmd) == ("busybox", ["sh", "-c", "echo -v --rm"])
    assert opts.rm and opts.interactive and opts.tty and not opts.detach
    assert opts.image == "busybox" and opts.command == cmd


def test_defaults_mean_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KOBAKO_DEFAULT_NETWORK", raising=False)  # the suite sets it to none
    o = parse()
    assert (o.name, o.user, o.workdir, o.entrypoint, o.network) == ("", "", "", None, "bridge")
    assert o.network_explicit  # the bridge is set up, as in Docker
    assert o.restart == RestartPolicy("no", 0) and o.healthcheck is None and o.pids_limit is None
    assert o.memory == 0 and o.cpus == 0 and o.ulimits == {} and o.cap_add == []


def test_default_network_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOBAKO_DEFAULT_NETWORK", "none")
    assert parse().network == "none"
    assert parse_run_args(["--network", "bridge", "busybox"])[0].network == "bridge"


def test_missing_image_and_unknown_flag() -> None:
    with pytest.raises(InvalidArgument, match="requires at least 1 argument"):
        parse_run_args(["--rm"])
    with pytest.raises(InvalidArgument, match="unknown flag: --bogus"):
        parse_run_args(["--bogus", "busybox"])


def test_help_needs_no_image() -> None:
    opts, image, cmd = parse_run_args(["--help"])
    assert opts.help and image == "" and cmd == []


@pytest.mark.parametrize(
    ("argv", "attr", "expected"),
    [
        (["--name", "web"], "name", "web"),
        (["--name=web.1"], "name", "web.1"),
        (["-w", "/srv/app/"], "workdir", "/srv/app"),
        (["-u", "nobody"], "user", "nobody"),
        (["--user=1000:1000"], "user", "1000:1000"),
        (["--entrypoint", ""], "entrypoint", ""),
        (["--entrypoint=/bin/echo"], "entrypoint", "/bin/echo"),
        (["-h", "web"], "hostname", "web"),
        (["--hostname", "web.example.com"], "domainname", "example.com"),
        (["--network", "none"], "network", "none"),
        (["--net=host"], "network", "host"),
        (["--network", "container:abc123"], "network", "container:abc123"),
        (["--network", "my-net_1"], "network", "my-net_1"),
        (["-m", "64m"], "memory", 64 << 20),
        (["--memory=1.5g"], "memory", int(1.5 * (1 << 30))),
        (["--memory", "64MB"], "memory", 64 << 20),
        (["--memory", "67108864"], "memory", 64 << 20),
        (["-m", "64m", "--memory-swap", "-1"], "memory_swap", -1),
        (["-m", "64m", "--memory-swap", "128m"], "memory_swap", 128 << 20),
        (["--shm-size", "1g"], "shm_size", 1 << 30),
        (["--cpus", "0.5"], "cpus", 0.5),
        (["--cpu-shares", "512"], "cpu_shares", 512),
        (["--cpuset-cpus", "0"], "cpuset_cpus", "0"),
        (["--pids-limit", "100"], "pids_limit", 100),
        (["--pids-limit", "-1"], "pids_limit", -1),
        (["--pids-limit", "0"], "pids_limit", -1),
        (["--ulimit", "nofile=1024:2048"], "ulimits", {"nofile": [1024, 2048]}),
        (["--ulimit", "nproc=100", "--ulimit", "core=-1"], "ulimits", {"nproc": [100, 100], "core": [-1, -1]}),
        (["--cap-add", "net_admin", "--cap-add", "CAP_SYS_TIME"], "cap_add", ["CAP_NET_ADMIN", "CAP_SYS_TIME"]),
        (["--cap-drop", "all"], "cap_drop", ["ALL"]),
        (["--security-opt", "no-new-privileges"], "no_new_privileges", True),
        (["--security-opt", "no-new-privileges:true"], "no_new_privileges", True),
        (["--security-opt", "no-new-privileges=false"], "no_new_privileges", False),
        (["--security-opt", "seccomp=unconfined"], "seccomp_unconfined", True),
        (["--security-opt", "seccomp:unconfined"], "seccomp_unconfined", True),
        (["--security-opt", "label=disable"], "security_opts", ["label=disable"]),
        (["--security-opt", "systempaths=unconfined"], "systempaths_unconfined", True),
        (["--privileged"], "privileged", True),
        (["--read-only"], "read_only", True),
        (["--init"], "init", True),
        (["--restart", "always"], "restart", RestartPolicy("always", 0)),
        (["--restart=on-failure:3"], "restart", RestartPolicy("on-failure", 3)),
        (["--restart", "unless-stopped"], "restart", RestartPolicy("unless-stopped", 0)),
        (["-l", "a=1", "--label", "b", "-l", "a=2"], "labels", {"a": "2", "b": ""}),
        (["--stop-signal", "SIGINT"], "stop_signal", "SIGINT"),
        (["--stop-signal", "9"], "stop_signal", "9"),
        (["--stop-timeout", "30"], "stop_timeout", 30),
        (["-a", "STDOUT", "-a", "stderr"], "attach", ["stdout", "stderr"]),
        (["-p", "8080:80", "-p", "127.0.0.1::53/udp", "-p", "[::1]:80:80"], "publish",
         ["8080:80", "127.0.0.1::53/udp", "[::1]:80:80"]),
        (["-p", "8000-8010:80"], "publish", ["8000-8010:80"]),
        (["--add-host", "db:10.0.0.2", "--add-host", "v6=::1"], "add_hosts", ["db:10.0.0.2", "v6=::1"]),
        (["--dns", "1.1.1.1"], "dns", ["1.1.1.1"]),
        (["-v", "/src:/dst:ro", "-v", "data:/data", "-v", "/anon"], "volumes", ["/src:/dst:ro", "data:/data", "/anon"]),
        (["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m"], "mounts", ["type=tmpfs,dst=/t,tmpfs-size=1m"]),
        (["--tmpfs", "/run:size=64m,exec"], "tmpfs", ["/run:size=64m,exec"]),
        (["--group-add", "audio"], "group_add", ["audio"]),
    ],
)  # fmt: skip
def test_flag_values(argv: list[str], attr: str, expected: object) -> None:
    assert getattr(parse(*argv), attr) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "-bad"], "invalid container name"),
        (["--name", "a b"], "invalid container name"),
        (["-w", "relative"], "needs to be an absolute path"),
        (["-u", ""], "invalid --user"),
        (["-u", "nobody:"], "invalid --user"),
        (["-e", "=x"], "no variable name"),
        (["-e", "A B=x"], "contains whitespaces"),
        (["-m", "lots"], "--memory"),
        (["-m", "1m"], "minimum memory limit allowed is 6MB"),
        (["-m", "64x"], "--memory"),
        (["--memory-swap", "128m"], "needs --memory"),
        (["-m", "128m", "--memory-swap", "64m"], "must be at least --memory"),
        (["--cpus", "abc"], "--cpus"),
        (["--cpus", "1000"], "range of CPUs"),
        (["--cpu-shares", "-2"], "--cpu-shares"),
        (["--cpuset-cpus", "3-1"], "--cpuset-cpus"),
        (["--cpuset-cpus", "a"], "--cpuset-cpus"),
        (["--pids-limit", "many"], "--pids-limit"),
        (["--ulimit", "nofile"], "invalid --ulimit"),
        (["--ulimit", "bogus=1"], "invalid --ulimit"),
        (["--ulimit", "nofile=2048:1024"], "soft limit must be less than or equal to hard"),
        (["--ulimit", "nofile=a:b"], "--ulimit nofile"),
        (["--cap-add", "NOT_A_CAP"], "unknown capability"),
        (["--security-opt", "bogus"], "invalid --security-opt"),
        (["--security-opt", "foo=bar"], "invalid --security-opt"),
        (["--security-opt", "no-new-privileges=maybe"], "no-new-privileges"),
        (["--security-opt", "seccomp=/nonexistent/profile.json"], "opening seccomp profile"),
        (["--restart", "sometimes"], "invalid restart policy"),
        (["--restart", "always:3"], "maximum retry count cannot be used"),
        (["--restart", "on-failure:x"], "--restart"),
        (["--restart", "always", "--rm"], "conflicting options: --restart and --rm"),
        (["--health-interval", "soon"], "--health-interval"),
        (["--health-timeout", "-1s"], "cannot be negative"),
        (["--health-interval", "100ns"], "less than 1ms"),
        (["--health-retries", "-1"], "--health-retries"),
        (["--no-healthcheck", "--health-cmd", "true"], "conflicts with --health-"),
        (["--stop-signal", "SIGNOPE"], "invalid signal"),
        (["--stop-timeout", "soon"], "--stop-timeout"),
        (["-a", "stdweird"], "valid streams are STDIN, STDOUT and STDERR"),
        (["-d", "-a", "stdout"], "conflicting options: -a and -d"),
        (["--network", "container:"], "invalid --network"),
        (["--network", "-x"], "invalid --network"),
        (["--network", "weird:thing"], "invalid --network"),
        (["-h", "bad_host"], "invalid --hostname"),
        (["-h", "x" * 65], "invalid --hostname"),
        (["-p", "80:80/icmp"], "protocol"),
        (["-p", "70000:80"], "out of range"),
        (["-p", "a:b:c:d"], "too many colons"),
        (["-p", "1.2.3:80:80"], "not an IP address"),
        (["-p", "8000-8001:80-82"], "ranges differ"),
        (["--add-host", "db"], "--add-host"),
        (["--add-host", "db:notanip"], "--add-host"),
        (["--dns", "resolver.local"], "--dns"),
        (["-v", "rel/path:/dst"], "invalid characters for a local volume name"),
        (["-v", "/src:relative"], "must be absolute"),
        (["-v", "/src:/dst:rx"], "invalid mode"),
        (["-v", "/src:/dst:ro,rw"], "invalid mode"),
        (["-v", "/src:/"], "destination can't be '/'"),
        (["-v", "a:b:c:d"], "invalid volume specification"),
        (["-v", "vol:/d:shared"], "invalid mode"),
        (["-v", "/a:/d", "-v", "/b:/d/"], "duplicate mount point"),
        (["--mount", "type=bind,target=/x"], "Source must not be empty"),
        (["--mount", "type=nfs,target=/x"], "type 'nfs' is not valid"),
        (["--mount", "source=v"], "target is required"),
        (["--mount", "type=tmpfs,source=x,target=/x"], "must not be specified"),
        (["--mount", "type=bind,src=/a,dst=/x,volume-nocopy"], "cannot mix 'volume-*' options"),
        (["--mount", "type=volume,dst=/x,tmpfs-size=1m"], "cannot mix 'tmpfs-*' options"),
        (["--mount", "type=volume,dst=/x,bogus=1"], "unexpected key"),
        (["--mount", "type=volume,dst=/x,readonly=maybe"], "invalid value for readonly"),
        (["--mount", "type=bind,src=/a,dst=/x,bind-propagation=wide"], "invalid bind-propagation"),
        (["--mount", "type=tmpfs,dst=/x,tmpfs-mode=999"], "tmpfs-mode"),
        (["--mount", "type=volume,dst=/x,volume-driver=nfs"], "not supported"),
        (["--mount", "type=bind,target"], "must be a key=value pair"),
        (["--tmpfs", "/t:size="], "invalid --tmpfs option"),
        (["--tmpfs", "/t:bogus"], "invalid --tmpfs option"),
        (["--tmpfs", "t"], "must be absolute"),
    ],
)
def test_flag_errors_name_the_flag_and_value(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse(*argv)


def test_env_from_host_files_and_order(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FROM_HOST", "yes")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    env_file = tmp_path / "env"
    env_file.write_text(
        '# comment\n\n  A=from-file\nB=spaces kept \nFROM_HOST\nNOT_SET_ANYWHERE\nQ="quoted"\n'
    )
    o = parse("--env-file", str(env_file), "-e", "A=from-flag", "-e", "FROM_HOST", "-e", "NOT_SET_ANYWHERE")
    assert o.env == [
        "A=from-file",
        "B=spaces kept ",
        "FROM_HOST=yes",
        'Q="quoted"',
        "A=from-flag",
        "FROM_HOST=yes",
    ]
    assert o.env_files == [str(env_file)]


def test_env_file_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument, match="--env-file"):
        parse("--env-file", str(tmp_path / "missing"))
    bad = tmp_path / "bad"
    bad.write_bytes(b"A=\xff\n")
    with pytest.raises(InvalidArgument, match="invalid UTF-8 bytes at line 1"):
        parse("--env-file", str(bad))


def test_label_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "labels"
    f.write_text("a=1\n# no\nb\n")
    o = parse("--label-file", str(f), "-l", "a=2")
    assert o.labels == {"a": "2", "b": ""} and o.label_files == [str(f)]


def test_seccomp_profile_file_is_read_at_parse_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "profile.json"
    f.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}))
    o = parse("--security-opt", f"seccomp={f}")
    assert o.seccomp_profile == {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
    f.write_text("[1, 2]")
    with pytest.raises(InvalidArgument, match="must be a JSON object"):
        parse("--security-opt", f"seccomp={f}")
    f.write_text("{nope")
    with pytest.raises(InvalidArgument, match="seccomp profile"):
        parse("--security-opt", f"seccomp={f}")


def test_healthcheck_flags() -> None:
    o = parse("--health-cmd", "curl -f localhost", "--health-interval", "1m30s", "--health-timeout", "500ms",
              "--health-retries", "5", "--health-start-period", "1.5s")  # fmt: skip
    hc = o.healthcheck
    assert hc is not None
    assert (hc.test, hc.interval, hc.timeout, hc.retries, hc.start_period) == (
        ["CMD-SHELL", "curl -f localhost"], 90.0, 0.5, 5, 1.5)  # fmt: skip
    only_interval = parse("--health-interval", "10s").healthcheck
    assert only_interval is not None and only_interval.test == [] and only_interval.interval == 10.0
    assert parse("--no-healthcheck").healthcheck.test == ["NONE"]  # type: ignore[union-attr]


def test_effective_healthcheck_merges_with_the_image() -> None:
    image = {"config": {"Healthcheck": {"Test": ["CMD", "check"], "Interval": 5_000_000_000, "Retries": 2}}}
    merged = effective_healthcheck(parse("--health-timeout", "3s"), image)
    assert merged is not None
    assert (merged.test, merged.interval, merged.timeout, merged.retries) == (["CMD", "check"], 5.0, 3.0, 2)
    assert effective_healthcheck(parse(), image).test == ["CMD", "check"]  # type: ignore[union-attr]
    assert effective_healthcheck(parse("--no-healthcheck"), image) is None
    assert effective_healthcheck(parse(), {"config": {}}) is None


def test_host_network_drops_published_ports() -> None:
    assert parse("--network", "host", "-p", "80:80").publish == []


def test_round_trip_through_json() -> None:
    from kobako.oci import jsoncodec

    o = parse("--name", "web", "--restart", "on-failure:2", "--health-cmd", "true", "-l", "a=b",
              "--ulimit", "nofile=10:20", "-v", "data:/data")  # fmt: skip
    back = RunOptions.from_dict(jsoncodec.loads(jsoncodec.dumps(o.to_dict())))
    assert back.to_dict() == o.to_dict()
    assert back.restart == RestartPolicy("on-failure", 2)
    assert isinstance(back.healthcheck, HealthConfig) and back.healthcheck.test == ["CMD-SHELL", "true"]
    assert RunOptions.from_dict({"name": "x", "field_from_the_future": 1}).name == "x"


def test_relative_bind_sources_become_absolute(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    o = parse("-v", "./src:/a:ro", "-v", "name:/b", "-v", "/abs:/c",
              "--mount", "type=bind,src=rel,dst=/d", "--mount", 'type=volume,src=vv,dst=/e,"volume-label=a=b,c"')  # fmt: skip
    assert o.volumes == [f"{tmp_path}/src:/a:ro", "name:/b", "/abs:/c"]
    assert o.mounts == [
        f"type=bind,src={tmp_path}/rel,dst=/d",
        'type=volume,src=vv,dst=/e,"volume-label=a=b,c"',
    ]

"""The flags of ``kobako run``/``create``, as docker spells them (parsed by kobako.cli.flags).

``RUN_FLAGS.usage()`` prints them; :func:`kobako.engine.runopts.parse_run_args` gives them meaning.
"""

from __future__ import annotations

from kobako.cli.flags import Flag, Flags


def _f(dest: str, *names: str, value: bool = True, many: bool = False, help: str = "") -> Flag:
    return Flag(dest, *names, value=value, many=many, help=help)


RUN_FLAGS = Flags(
    _f("detach", "-d", "--detach", value=False, help="run in the background and print the container ID"),
    _f("rm", "--rm", value=False, help="remove the container when it exits"),
    _f("interactive", "-i", "--interactive", value=False, help="keep STDIN open"),
    _f("tty", "-t", "--tty", value=False, help="allocate a pseudo-TTY"),
    _f("name", "--name", help="container name"),
    _f("env", "-e", "--env", many=True, help="set an environment variable (K=V, or K from the host)"),
    _f("env_file", "--env-file", many=True, help="read environment variables from a file"),
    _f("workdir", "-w", "--workdir", help="working directory inside the container"),
    _f("user", "-u", "--user", help="USER[:GROUP] (name or id)"),
    _f("group_add", "--group-add", many=True, help="additional group (name or id)"),
    _f("entrypoint", "--entrypoint", help="override the image's entrypoint ('' clears it)"),
    _f("volume", "-v", "--volume", many=True, help="[SRC:]DST[:OPTS] bind mount or volume"),
    _f("mount", "--mount", many=True, help="type=bind|volume|tmpfs,source=,target=,readonly,..."),
    _f("tmpfs", "--tmpfs", many=True, help="mount a tmpfs: DST[:OPTS]"),
    _f("read_only", "--read-only", value=False, help="mount the root filesystem read-only"),
    _f("hostname", "-h", "--hostname", help="container host name"),
    _f("network", "--network", "--net", many=True, help="none, host, bridge, NAME or container:ID"),
    _f("ip", "--ip", help="IPv4 address on the (first) network"),
    _f("network_alias", "--network-alias", "--net-alias", many=True, help="extra DNS name on the networks"),
    _f("publish", "-p", "--publish", many=True, help="[IP:][HOST:]PORT[/PROTO]"),
    _f("publish_all", "-P", "--publish-all", value=False, help="publish the image's exposed ports"),
    _f("add_host", "--add-host", many=True, help="HOST:IP entry for /etc/hosts"),
    _f("dns", "--dns", many=True, help="DNS server"),
    _f("dns_search", "--dns-search", many=True, help="DNS search domain"),
    _f("dns_option", "--dns-option", "--dns-opt", many=True, help="DNS resolver option"),
    _f("memory", "-m", "--memory", help="memory limit (b, k, m, g)"),
    _f("memory_swap", "--memory-swap", help="memory plus swap limit; -1 for unlimited swap"),
    _f("shm_size", "--shm-size", help="size of /dev/shm"),
    _f("cpus", "--cpus", help="number of CPUs (e.g. 0.5)"),
    _f("cpu_shares", "-c", "--cpu-shares", help="relative CPU weight"),
    _f("cpuset_cpus", "--cpuset-cpus", help="CPUs to run on (0-3, 0,1)"),
    _f("pids_limit", "--pids-limit", help="process limit (-1 for unlimited)"),
    _f("ulimit", "--ulimit", many=True, help="NAME=SOFT[:HARD]"),
    _f("cap_add", "--cap-add", many=True, help="add a capability (or ALL)"),
    _f("cap_drop", "--cap-drop", many=True, help="drop a capability (or ALL)"),
    _f("security_opt", "--security-opt", many=True, help="seccomp=FILE|unconfined, no-new-privileges, ..."),
    _f("privileged", "--privileged", value=False, help="give extended privileges to the container"),
    _f("restart", "--restart", help="no, on-failure[:N], always, unless-stopped"),
    _f("health_cmd", "--health-cmd", help="command to check health"),
    _f("health_interval", "--health-interval", help="time between checks (e.g. 30s)"),
    _f("health_timeout", "--health-timeout", help="longest a check may run"),
    _f("health_retries", "--health-retries", help="failures before unhealthy"),
    _f("health_start_period", "--health-start-period", help="grace period after start"),
    _f("no_healthcheck", "--no-healthcheck", value=False, help="disable the image's healthcheck"),
    _f("init", "--init", value=False, help="run an init that forwards signals and reaps processes"),
    _f("label", "-l", "--label", many=True, help="set a label K=V"),
    _f("label_file", "--label-file", many=True, help="read labels from a file"),
    _f("stop_signal", "--stop-signal", help="signal to stop the container"),
    _f("stop_timeout", "--stop-timeout", help="seconds to wait before killing"),
    _f("attach", "-a", "--attach", many=True, help="attach to STDIN, STDOUT or STDERR"),
    _f("help", "--help", value=False, help="print usage"),
)

"""What `inspect` and `ps` show of a container, as docker shapes it; the state is always observed live.

Shared by the CLI (containers_view.py) and the Engine API, so both report the same thing.
"""

from __future__ import annotations

from kobako.engine import tasks
from kobako.engine.clock import ZERO, ago, human, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.containers import ContainerRecord, ContainerStore


def status_text(st: tasks.TaskState, now: float) -> str:
    """docker's STATUS column: "Up 3 seconds (healthy)", "Exited (0) 2 seconds ago", "Created" ..."""
    if st.status in ("running", "paused"):
        text = f"Up {human(now - parse(st.started_at))}"
        if st.status == "paused":
            return text + " (Paused)"
        health = (st.health or {}).get("Status")
        if health:
            text += " (health: starting)" if health == "starting" else f" ({health})"
        return text
    if st.status == "restarting":
        return f"Restarting ({st.exit_code}) {ago(st.finished_at, now)}"
    if st.status == "exited":
        return f"Exited ({st.exit_code}) {ago(st.finished_at, now)}"
    return "Created"


def state_name(st: tasks.TaskState) -> str:
    return "created" if st.status == "starting" else st.status


def state_of(st: tasks.TaskState, healthcheck: bool) -> dict:
    """docker's ``State`` object."""
    running = st.status in ("running", "paused")
    state = {
        "Status": state_name(st), "Running": running, "Paused": st.status == "paused",
        "Restarting": st.status == "restarting", "OOMKilled": st.oom_killed, "Dead": st.status == "dead",
        "Pid": st.pid if running else 0, "ExitCode": st.exit_code, "Error": st.error,
        "StartedAt": st.started_at, "FinishedAt": st.finished_at if not running else ZERO,
    }  # fmt: skip
    if healthcheck:
        state["Health"] = st.health or {"Status": "starting", "FailingStreak": 0, "Log": []}
    return state


def inspect_data(store: ContainerStore, record: ContainerRecord) -> dict:
    st = tasks.observe(store, record.id)
    return {
        "Id": record.id, "Created": record.created, "Path": record.path, "Args": record.args,
        "State": state_of(st, bool(record.healthcheck)),
        "Image": record.image_id, "ResolvConfPath": store.path(record.id, "userdata", "resolv.conf"),
        "HostnamePath": store.path(record.id, "userdata", "hostname"),
        "HostsPath": store.path(record.id, "userdata", "hosts"),
        "LogPath": store.path(record.id, "ctr.log"), "Name": "/" + record.name,
        "RestartCount": st.restart_count, "Driver": "overlay", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {}}, **record.host_config}, "Mounts": record.mounts, "Config": record.config,
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": store.rootfs(record.id)}},
        "NetworkSettings": network_settings(store, record),
    }  # fmt: skip


def network_settings(store: ContainerStore, record: ContainerRecord) -> dict:
    """docker's NetworkSettings: the addresses of a running networked container (monitor_net's file)."""
    from kobako.engine import monitor_net

    res = monitor_net.settings(store, record.id) or {}
    nets = res.get("networks") or {}
    first = next(iter(nets.values()), {})
    return {
        "Networks": nets, "Ports": res.get("ports") or {}, "SandboxKey": res.get("netns_path", ""),
        "IPAddress": first.get("IPAddress", ""), "Gateway": first.get("Gateway", ""),
        "IPPrefixLen": first.get("IPPrefixLen", 0), "MacAddress": first.get("MacAddress", ""),
    }  # fmt: skip


def cgroup(record: ContainerRecord) -> object:
    """The running container's cgroup manager (for stats and top); Conflict when it is not running."""
    rt = tasks.runtime_task(record.id)
    if rt is None or rt[0] not in ("running", "paused") or not rt[2]:
        from kobako.errors import Conflict

        raise Conflict(f"container {record.id[:12]} is not running")
    from kobako.cgroups import load_manager

    return load_manager(rt[2])

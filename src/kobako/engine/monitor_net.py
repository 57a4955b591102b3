"""A container's networking as the engine drives it (kobako.engine.network.service does the work).

create: a container on ``bridge`` or named networks gets a *plan* (``network.json`` in its record dir: the
networks and the flags that shape them) and a spec joining ``<run_root>/netns/<id>``. start: the monitor,
forked early by the CLI, preloads the network library (and libnftables, ~10 ms) on the other
core while the CLI prepares the container (``HINT``: sent down the go pipe once the CLI knows), then, after
go and before the runtime creates the task (the CLI still holds the record's lock and waits for STARTED),
runs ``NetworkService.setup``, rewrites /etc/hosts with the address and saves the result in
``netsettings.json`` for ``inspect`` and ``port``. Between policy restarts the namespace stays; when the
task is over for good the monitor tears it down, and ``rm`` does so again (idempotent) before the record
goes. ``container:ID`` is resolved at start and patched into the bundle's config.json. none and host never
import any of this' network library.
"""

from __future__ import annotations

import os

from kobako.engine import netopts
from kobako.errors import KobakoError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from kobako.engine.containers import ContainerRecord, ContainerStore
    from kobako.engine.runopts import RunOptions

PLAN = "network.json"
SETTINGS = "netsettings.json"
HINT = b"+net\n"  # on the go pipe before go: "this container has networking, preload it"
#: What the monitor imports for a networked container while the CLI works (libnftables first: the heaviest,
#: ~10 ms; setup's netlink requests are encoded without pyroute2).
PRELOAD = (
    "kobako.engine.network.warm", "kobako.engine.network.netlink", "kobako.engine.network.bridge",
    "kobako.engine.network.service", "kobako.engine.network.sandbox", "kobako.engine.network.dns", "kobako.engine.network.fastpath",
    "kobako.engine.runopts", "kobako.oci.jsoncodec", "kobako.engine.etcfiles",
    "kobako.engine.monitor_net:open_service",  # the database, netlink and nftables handles, opened now
)  # fmt: skip
_service: Any = None  # this process's NetworkService, kept open from setup to teardown (see open_service)


def wants(opts: RunOptions) -> bool:
    """Real networking: bridge or named networks, asked for (see RunOptions.network_explicit)."""
    return bool(getattr(opts, "network_explicit", False)) and netopts.is_named(opts.network)


def netns_path(container_id: str) -> str:
    """``NetworkService().netns_path(id)`` without importing the service (same run root rule)."""
    from kobako import paths

    return os.path.join(paths.run_root(), "netns", container_id)


def make_plan(opts: RunOptions, image_config: dict, hostname: str) -> dict[str, Any]:
    inner = image_config.get("config") or {}
    return {
        "networks": [opts.network, *opts.networks], "aliases": list(opts.aliases), "ip": opts.ip,
        "publish": list(opts.publish),
        "exposed": sorted(inner.get("ExposedPorts") or {}) if opts.publish_all else [],
        "dns": list(opts.dns), "add_hosts": list(opts.add_hosts), "hostname": hostname,
        "domainname": opts.domainname, "name": opts.name,
    }  # fmt: skip


def check_networks(opts: RunOptions) -> None:
    """NotFound now (at create) for a network that does not exist."""
    from kobako.engine.network.service import NetworkService

    net = NetworkService()
    try:
        for name in [opts.network, *opts.networks]:
            net.get(name)
    finally:
        net.close()


def save_plan(store: ContainerStore, container_id: str, plan: dict[str, Any]) -> None:
    from kobako.oci import jsoncodec

    _write(store.path(container_id, PLAN), jsoncodec.dumps(plan))


def has_plan(store: ContainerStore, container_id: str) -> bool:
    return os.path.exists(store.path(container_id, PLAN))


def _write(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _load(path: str) -> dict[str, Any] | None:
    from kobako.oci import jsoncodec

    try:
        with open(path, "rb") as f:
            return jsoncodec.loads(f.read())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def settings(store: ContainerStore, container_id: str) -> dict[str, Any] | None:
    """What setup returned for the running container (None: not networked, or not running)."""
    return _load(store.path(container_id, SETTINGS))


class NetworkStartError(KobakoError):
    """Networking failed before the task was created: docker's exit code 125, whatever the message says."""

    start_code = 125


def open_service() -> Any:
    """The monitor's NetworkService: opened once (during the preload when it can), kept open across its
    container's setups and teardowns, never closed on the critical path (an exit with the database open
    is a crash SQLite is built for; the next opener replays the WAL)."""
    global _service
    from kobako import paths

    if _service is None or _service.root != paths.state_root():
        from kobako.engine.network.service import NetworkService

        _service = NetworkService()
    return _service


def setup(store: ContainerStore, record: ContainerRecord) -> dict[str, Any] | None:
    """In the monitor, before the runtime creates the task: the sandbox, hosts, settings. None: no plan."""
    plan = _load(store.path(record.id, PLAN))
    if plan is None:
        return None
    from kobako.engine import etcfiles
    from kobako.engine.runopts import RunOptions

    net = open_service()  # stays open for the teardown
    net.forget_kernel()
    try:
        res = net.setup(record.id, record.name, plan["networks"], plan["aliases"], plan["ip"] or None,
                        plan["publish"], plan["exposed"], plan["dns"], plan["add_hosts"])  # fmt: skip
    except KobakoError as exc:
        raise NetworkStartError(str(exc)) from exc
    try:
        opts = RunOptions()
        opts.network, opts.name, opts.domainname = plan["networks"][0], plan["name"], plan["domainname"]
        opts.add_hosts = list(plan["add_hosts"])
        first = next(iter(res["networks"].values()), {})
        etcfiles.write_hosts(store.path(record.id, "userdata"), opts, plan["hostname"],
                             ip=first.get("IPAddress", ""))  # fmt: skip
        net.refresh_hosts(record.id)
        from kobako.oci import jsoncodec

        _write(store.path(record.id, SETTINGS), jsoncodec.dumps(res))
    except BaseException as exc:
        _teardown_after(net, record.id, exc)
        raise
    return res  # type: ignore[no-any-return]


def accelerate(container_id: str) -> None:
    """The same-network fast path for a started container (see network/fastpath.py); best effort."""
    if _service is not None:
        _service.accelerate(container_id)


def _teardown_after(net: Any, container_id: str, exc: BaseException) -> None:
    try:
        net.teardown(container_id)
    except KobakoError as cleanup:
        if isinstance(exc, KobakoError):
            exc.add_cleanup_error(cleanup)


def teardown(store: ContainerStore, container_id: str, lazy: bool | None = None) -> None:
    """Undo setup (idempotent); the settings file goes first, so `port` and `inspect` show nothing. A
    ``--rm`` container's veths are left for the kernel to delete with its namespace (off the CLI's exit:
    ~20 ms); any other's go now, so a `rm` or `stop` leaves no link behind when it returns."""
    try:
        os.unlink(store.path(container_id, SETTINGS))
    except FileNotFoundError:
        pass
    if lazy is None:
        try:
            lazy = store.load(container_id).auto_remove
        except KobakoError:
            lazy = False
    from kobako import paths

    if _service is not None and _service.root == paths.state_root():  # the monitor's, open since setup
        _service.teardown(container_id, lazy=lazy)
        return
    from kobako.engine.network.service import NetworkService

    net = NetworkService()
    try:
        net.teardown(container_id, lazy=lazy)
    finally:
        net.close()


def join_container(store: ContainerStore, record: ContainerRecord) -> None:
    """``--network container:X``: point the bundle's network namespace at X's, as it is now."""
    mode = str(record.host_config.get("NetworkMode", ""))
    if not mode.startswith("container:"):
        return
    from kobako.engine.network.service import container_netns
    from kobako.oci import jsoncodec

    path = container_netns(mode.partition(":")[2])
    config = os.path.join(store.bundle(record.id), "config.json")
    with open(config, "rb") as f:
        spec = jsoncodec.loads(f.read())
    for ns in spec.get("linux", {}).get("namespaces", []):
        if ns.get("type") == "network":
            ns["path"] = path
    spec.get("linux", {}).pop("sysctl", None)  # the owner's namespace: its sysctls are not ours to set
    _write(config, jsoncodec.dumps(spec))


def ports_lines(res: dict[str, Any] | None, want: str = "") -> list[str]:
    """docker's `port` output: "80/tcp -> 0.0.0.0:8080" (``want``: "80" or "80/udp" only)."""
    lines = []
    if want and "/" not in want:
        want += "/tcp"
    for port, binds in sorted(((res or {}).get("ports") or {}).items()):
        if want and port != want:
            continue
        for b in binds or []:
            host = b.get("HostIp") or "0.0.0.0"
            host = f"[{host}]" if ":" in host else host
            lines.append(f"{port} -> {host}:{b.get('HostPort', '')}")
    return lines

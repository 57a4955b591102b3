"""Container lifecycle across records, images, specs and tasks: what `kobako` verbs (and later the API) call.

create: record first (so a killed create leaves something `rm -f` can name), then the snapshot, the rootfs
mount, volumes and the OCI spec; any failure removes all of it. start: under the record's lock, mount the
rootfs if needed and fork the monitor, which reports STARTED or ERROR. remove: stop the task if forced, wait
for its monitor to finish, then runtime state, mounts, snapshot, anonymous volumes and the record.
"""

from __future__ import annotations

import os

from kobako.engine import tasks
from kobako.engine.clock import rfc3339
from kobako.engine.containers import ContainerRecord, ContainerStore
from kobako.errors import Conflict, KobakoError, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from kobako.engine.monitor_fork import Prefork
    from kobako.engine.runopts import RunOptions
    from kobako.images.service import ImageService
    from kobako.mount import Mount


class StartFailed(KobakoError):
    """The task did not start; ``exit_code`` is docker's: 125, 126 (cannot execute) or 127 (not found)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def create(store: ContainerStore, opts: RunOptions, image_ref: str, cmd: list[str], keep_mounted: bool,
           images: ImageService | None = None) -> ContainerRecord:  # fmt: skip
    """``images``: the caller's image service, left open for later calls (it closes it, before any fork:
    a monitor must not inherit a live database handle); by default one is opened and closed here."""
    own = images is None
    if own:
        from kobako.images.service import ImageService

        images = ImageService()
    try:
        image = images.resolve(image_ref)  # type: ignore[union-attr]
        # The snapshot is keyed by the container id, named in the record from the start: a create killed at
        # any point leaves a record whose removal also removes the snapshot, if it got that far.
        cid = os.urandom(32).hex()
        record = ContainerRecord(cid, "", image_ref, image_id=image.id, created=rfc3339(), snapshot_key=cid)
        store.create(record, name=opts.name or None)
        try:
            _build(
                store,
                record,
                images,
                image,
                opts,
                cmd,
                volatile=keep_mounted and bool(opts.rm),
                check_networks=not keep_mounted,
            )  # `run` leaves that to the start (fails there as 125)
            if not keep_mounted:
                unmount_rootfs(store, record.id)
        except BaseException as exc:
            try:
                remove(store, record, volumes=True, force=True, images=images)
            except KobakoError as cleanup:
                if isinstance(exc, KobakoError):
                    exc.add_cleanup_error(cleanup)
            raise
    finally:
        if own:
            images.close()  # type: ignore[union-attr]
    return record


def _build(store: ContainerStore, record: ContainerRecord, images: object, image: object, opts: RunOptions,
           cmd: list[str], volatile: bool = False, check_networks: bool = True) -> None:  # fmt: skip
    from kobako.engine import monitor_net, restart, specgen
    from kobako.oci import jsoncodec

    cid = record.id
    mounts = images.prepare_rootfs(image, key=record.snapshot_key, labels={"kobako.container": cid})  # type: ignore[attr-defined]
    rootfs = store.rootfs(cid)
    os.makedirs(rootfs, 0o755, exist_ok=True)
    _mount(mounts, rootfs, volatile)
    config = image.config  # type: ignore[attr-defined]
    inner = config.get("config") or {}
    extra: list[dict] = []
    if opts.volumes or opts.mounts or opts.tmpfs or specgen.image_section(config).get("Volumes"):
        from kobako.engine.volumes import VolumeStore, volume_mounts

        extra = volume_mounts(opts, config, rootfs, VolumeStore(), cid)
    userdata = store.path(cid, "userdata")
    os.makedirs(userdata, 0o700, exist_ok=True)
    networked = monitor_net.wants(opts)
    if networked and check_networks:
        monitor_net.check_networks(opts)
    spec = specgen.generate(cid, config, opts, rootfs, extra, userdata,
                            netns_path=monitor_net.netns_path(cid) if networked else "")  # fmt: skip
    if networked:
        monitor_net.save_plan(store, cid, monitor_net.make_plan(opts, config, spec.get("hostname", "")))
    with open(os.path.join(store.bundle(cid), "config.json"), "w") as f:
        f.write(jsoncodec.dumps(spec))
    try:
        from kobako.engine.runopts import effective_healthcheck

        hc = effective_healthcheck(opts, config)
    except ImportError:  # pragma: no cover - older run options
        hc = opts.healthcheck
    record.healthcheck = None
    if hc is not None:
        from kobako.engine import health

        record.healthcheck = health.from_options(hc, None)
    record.restart_policy = restart.from_options(opts.restart)
    record.stop_signal = opts.stop_signal or inner.get("StopSignal") or "SIGTERM"
    record.stop_timeout = 10 if opts.stop_timeout is None else int(opts.stop_timeout)
    record.auto_remove, record.tty, record.interactive = bool(opts.rm), bool(opts.tty), bool(opts.interactive)
    record.labels = {**(inner.get("Labels") or {}), **dict(opts.labels)}
    describe(record, spec, opts, image, extra, cmd)
    store.save(record)
    tasks.save(store, cid, tasks.TaskState(status="created"))


def describe(record: ContainerRecord, spec: dict, opts: RunOptions, image: object, extra: list[dict],
             cmd: list[str]) -> None:  # fmt: skip
    """Docker-style Config, HostConfig and Mounts for `inspect`, taken from the generated spec."""
    proc = spec.get("process", {})
    args = list(proc.get("args", []))
    record.path, record.args = (args[0] if args else ""), args[1:]
    inner = image.config.get("config") or {}  # type: ignore[attr-defined]
    entrypoint = (
        inner.get("Entrypoint")
        if opts.entrypoint is None
        else ([opts.entrypoint] if opts.entrypoint else None)
    )
    user = proc.get("user", {})
    resources = spec.get("linux", {}).get("resources", {})
    record.config = {
        "Hostname": spec.get("hostname", ""), "User": opts.user or inner.get("User", ""),
        "Env": list(proc.get("env", [])), "Cmd": list(cmd) or inner.get("Cmd"), "Entrypoint": entrypoint,
        "Image": record.image, "WorkingDir": proc.get("cwd", "/"), "Labels": record.labels,
        "StopSignal": record.stop_signal, "StopTimeout": record.stop_timeout, "Tty": record.tty,
        "OpenStdin": record.interactive, "Healthcheck": record.healthcheck,
        "Uid": user.get("uid", 0), "Gid": user.get("gid", 0),
    }  # fmt: skip
    cpu = resources.get("cpu", {})
    record.host_config = {
        "Binds": list(opts.volumes), "NetworkMode": opts.network, "RestartPolicy": record.restart_policy,
        "AutoRemove": record.auto_remove, "Privileged": bool(opts.privileged), "ReadonlyRootfs": bool(opts.read_only),
        "CapAdd": list(opts.cap_add), "CapDrop": list(opts.cap_drop), "SecurityOpt": list(opts.security_opts),
        "Memory": int(resources.get("memory", {}).get("limit", 0) or 0),
        "NanoCpus": int(float(opts.cpus or 0) * 1e9), "CpuQuota": int(cpu.get("quota", 0) or 0),
        "PidsLimit": resources.get("pids", {}).get("limit"), "Init": bool(opts.init),
        "Ulimits": [{"Name": k, "Soft": v[0], "Hard": v[1]} for k, v in dict(opts.ulimits).items()],
    }  # fmt: skip
    record.mounts = [
        {"Type": m.get("type", "bind") if m.get("type") != "none" else "bind", "Source": m.get("source", ""),
         "Destination": m.get("destination", ""), "RW": "ro" not in (m.get("options") or []),
         **({"Name": _volume_name(m.get("source", ""))} if _volume_name(m.get("source", "")) else {})}
        for m in extra
    ]  # fmt: skip


def _volume_name(source: str) -> str:
    """``<state>/volumes/<name>/_data`` → name ("" for other sources)."""
    from kobako import paths

    base = os.path.join(paths.state_root(), "volumes") + "/"
    if source.startswith(base) and source.endswith("/_data"):
        return source[len(base) : -len("/_data")]
    return ""


def mount_rootfs(store: ContainerStore, record: ContainerRecord) -> None:
    """Mount the container's snapshot at bundle/rootfs unless it already is (a plain-dir bundle has no key)."""
    from kobako.mount import mounted_under

    rootfs = store.rootfs(record.id)
    if not record.snapshot_key or mounted_under(rootfs):
        return
    from kobako.images.service import ImageService

    images = ImageService()
    try:
        _mount(images.rootfs_mounts(record.snapshot_key), rootfs, record.auto_remove)
    finally:
        images.close()


def _mount(mounts: list[Mount], rootfs: str, volatile: bool) -> None:
    """Mount the rootfs; ``volatile`` (a --rm container about to run): overlay's ``volatile`` option, as
    Podman gives --rm containers. Nothing the container writes is synced, and unmounting skips the syncfs of
    the whole upper filesystem, which waits for every dirty page of every process on it (milliseconds on a
    busy disk, on the critical path of every `run --rm`). A crash loses only what was to be thrown away."""
    from kobako.mount import mount_all

    if volatile:
        fast = [_volatile(m) for m in mounts]
        if fast != mounts:
            try:
                mount_all(fast, rootfs)
                return
            except KobakoError as exc:
                if getattr(exc.__cause__, "errno", 0) != 22:  # EINVAL: a kernel before 5.10
                    raise
    mount_all(mounts, rootfs)


def _volatile(m: Mount) -> Mount:
    workdir = m.option("workdir") if m.type == "overlay" else None
    if not workdir or "volatile" in m.options:
        return m
    # overlay leaves this marker and refuses a later volatile mount while it exists. A marker made since
    # the last boot means no crash came between (a start after the monitor died, say): it can go.
    marker = os.path.join(workdir, "work", "incompat", "volatile")
    try:
        made = os.stat(marker).st_ctime
    except FileNotFoundError:
        made = None
    if made is not None:
        if made < _boot_time():
            from kobako.errors import FailedPrecondition

            raise FailedPrecondition(
                "the root filesystem of this --rm container was not synced before the machine went down: "
                "remove the container"
            )
        os.rmdir(marker)
    from kobako.mount import Mount

    return Mount(m.type, m.source, m.target, [*m.options, "volatile"])


def _boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


def unmount_rootfs(store: ContainerStore, container_id: str) -> None:
    from kobako.mount import unmount_all

    unmount_all(store.rootfs(container_id))  # one umount2 and one look at mountinfo in the usual case


def start(store: ContainerStore, record: ContainerRecord, prefork: Prefork | None = None,
          while_starting: Callable[[], None] | None = None, mounted: bool = False
          ) -> tuple[socket.socket, object, list]:  # fmt: skip
    """Start the task; return the attach socket (STARTED already read), its reader and frames already read.

    ``prefork``: a monitor forked early by the caller (see kobako.engine.monitor_fork.Prefork); else one is
    forked now. ``while_starting`` is called once the monitor has the container, while it creates the task
    on the other core: what the caller does there is off the critical path. ``mounted``: the caller has
    just mounted the rootfs (``create(keep_mounted=True)``), so mountinfo need not say so. Raises StartFailed
    (exit code 125/126/127) when the task could not start.
    """
    from kobako.engine import attach, monitor_fork

    with store.lock(record.id):
        tasks.reset_for_start(store, record)
        if not mounted:
            mount_rootfs(store, record)
        if str(record.host_config.get("NetworkMode", "")).startswith("container:"):
            from kobako.engine import monitor_net

            monitor_net.join_container(store, record)
        sock = (prefork or monitor_fork.Prefork()).go(store, record)
        if while_starting is not None:
            while_starting()
        _pid, code, message, reader, rest = attach.wait_started(sock)
    if code:
        sock.close()
        raise StartFailed(message, code)
    return sock, reader, rest


def remove(store: ContainerStore, record: ContainerRecord, volumes: bool = False, force: bool = False,
           images: object | None = None, monitor: tuple[object, object] | None = None) -> None:  # fmt: skip
    """Remove a container; a running one only with ``force`` (killed, as docker rm -f does).

    ``monitor``: (socket, frame reader) of a monitor this client took a --rm container over from; it
    tears the network down meanwhile and says NETDOWN (if it cannot, we do it here)."""
    st = tasks.observe(store, record.id)
    if st.status == "starting" and tasks.monitor_alive(st):  # let it get going, then stop it properly
        st = tasks.wait_exit(store, record.id, 10, ("starting",))
    if st.status in tasks.ACTIVE and st.status != "starting":
        if not force:
            raise Conflict(
                f"cannot remove container {record.id[:12]}: container is {st.status}: "
                "stop the container before attempting removal or force remove"
            )
        tasks.stop(store, record, 0, 9)
    st = tasks.load(store, record.id)
    if st.status in tasks.ACTIVE and st.status != "starting" and tasks.monitor_alive(st):
        tasks.wait_exit(store, record.id, 10)  # e.g. a restart in back-off, woken by stop: let it finish
    unmount_rootfs(store, record.id)
    networked = os.path.exists(store.path(record.id, "network.json"))  # monitor_net.PLAN
    if networked and monitor is None:
        from kobako.engine import monitor_net

        tasks.wait_monitor_gone(st)  # it tears the network down as the task ends: not both at once
        monitor_net.teardown(store, record.id)
    # A monitor that reported the exit may still be deleting the runtime state: that does not touch
    # the record, so the snapshot and the record go meanwhile; then we wait for it.
    if record.snapshot_key:
        own = images is None
        if own:
            from kobako.images.service import ImageService

            images = ImageService()
        try:
            images.remove_rootfs(record.snapshot_key)  # type: ignore[attr-defined]
        finally:
            if own:
                images.close()  # type: ignore[attr-defined]
    try:
        store.remove(record)
    except NotFound:
        pass
    if volumes:  # after the record: a volume named by a record is in use
        _remove_anonymous_volumes(record)
    from kobako import paths
    from kobako.runtime.lifecycle.delete import delete

    if monitor is not None and networked:
        # The monitor that handed over tears the network down meanwhile and leaves the runtime state to us.
        delete(paths.runtime_root(), record.id, force=True)
        _await_network_down(store, record.id, *monitor)
    tasks.wait_monitor_gone(st)
    delete(paths.runtime_root(), record.id, force=True)


def _await_network_down(store: ContainerStore, container_id: str, sock: object, reader: object) -> None:
    """Wait for the monitor's NETDOWN; a monitor that failed, ended or stalled 10 s without one leaves
    the teardown to us (it works from the network records: whatever is left goes, or its error shows)."""
    if _netdown_heard(sock, reader) is not True:
        from kobako.engine import monitor_net

        monitor_net.teardown(store, container_id, lazy=True)


def _netdown_heard(sock: object, reader: object, timeout: float = 10) -> bool | None:
    """True: NETDOWN, all went; False: NETDOWN with an error; None: the monitor ended or stalled first."""
    import select
    import time

    from kobako.engine import attach

    deadline = time.monotonic() + timeout
    while select.select([sock], [], [], max(deadline - time.monotonic(), 0))[0]:
        try:
            data = sock.recv(65536)  # type: ignore[attr-defined]
        except OSError:
            return None
        if not data:
            return None
        for kind, payload in reader.feed(data):  # type: ignore[attr-defined]
            if kind == attach.NETDOWN:
                return not payload
    return None


def _remove_anonymous_volumes(record: ContainerRecord) -> None:
    """Volumes made for this container alone (docker's anonymous volumes); named ones stay."""
    names = [m["Name"] for m in record.mounts if m.get("Name")]
    if not names:
        return
    from kobako.engine.volumes import VolumeStore

    vs = VolumeStore()
    for name in names:
        try:
            if vs.get(name).anonymous:
                vs.remove(name)
        except KobakoError:
            pass

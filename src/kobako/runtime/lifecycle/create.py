"""create: validate the bundle, make the state dir, spawn the init and leave it waiting for `start`."""

from __future__ import annotations

import os

from kobako.errors import InvalidArgument, KobakoError, NotFound
from kobako.oci import runtime_spec
from kobako.runtime import namespaces
from kobako.runtime import state as state_mod
from kobako.runtime.process import bootstrap
from kobako.runtime.process.channel import ChildError
from kobako.runtime.process.config import InitConfig
from kobako.runtime.state import State, StateDir


class CreateOptions:
    def __init__(
        self,
        bundle: str = ".",
        pid_file: str | None = None,
        console_socket: str | None = None,
        console_fd: int = -1,
        no_pivot: bool = False,
        no_new_keyring: bool = False,
        preserve_fds: int = 0,
        detach: bool = True,
        start_at_once: bool = False,
    ) -> None:
        self.bundle = bundle
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.console_fd = console_fd
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.detach = detach
        # `run` in the foreground: the fifo's reading end is opened before the init reaches the barrier,
        # so it passes at once instead of waiting for start; start.release() then takes ``fifo_reader``.
        self.start_at_once = start_at_once
        self.fifo_reader = -1
        self.loaded: tuple[str, dict, bytes] | None = None  # load_bundle() already done by the caller


def create(root: str, container_id: str, opts: CreateOptions) -> State:
    sd = StateDir(root, container_id)  # checks the ID before anything is touched
    bundle, spec, raw_spec = opts.loaded or load_bundle(opts.bundle)
    rootfs = os.path.join(bundle, spec["root"]["path"])
    if not os.path.isdir(rootfs):
        raise NotFound(f"rootfs {rootfs!r} (root.path in config.json) does not exist")
    _precheck(spec, opts, root)
    sd.create()
    init_pid = 0
    made: list[object] = []
    try:
        os.mkfifo(sd.fifo, 0o622)
        os.chmod(sd.fifo, 0o622)  # past the umask: a user-namespaced init writes it as "other"
        # Opened here and inherited: the init may not be able to walk to the state dir (user namespaces).
        fifo_fd = os.open(sd.fifo, os.O_PATH | os.O_CLOEXEC)
        if opts.start_at_once:
            opts.fifo_reader = os.open(sd.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        linux = spec.get("linux", {})
        requested = namespaces.by_type(linux.get("namespaces", []))
        console_fd = opts.console_fd
        if console_fd < 0 and opts.console_socket:
            console_fd = _connect(opts.console_socket)
        st = State(
            id=container_id,
            bundle=bundle,
            created=state_mod.now_rfc3339(),
            annotations=spec.get("annotations", {}),
            rootfs=rootfs,
            hooks={k: spec["hooks"][k] for k in ("poststart", "poststop") if spec.get("hooks", {}).get(k)},
            owns_pidns="pid" in requested and not requested["pid"],
        )
        cfg = InitConfig(
            spec=spec,
            rootfs=rootfs,
            fifo_fd=fifo_fd,
            console_fd=console_fd,
            no_pivot=opts.no_pivot,
            no_new_keyring=opts.no_new_keyring,
            preserve_fds=opts.preserve_fds,
            cgroup_path="",
            state=dict(st.oci(), status="creating"),
            new_mount_ns="mount" in requested and not requested["mount"],
            new_uts_ns="uts" in requested and not requested["uts"],
        )

        def record(pid: int) -> None:
            # Written while the init still builds its rootfs, not after it is READY.
            st.cgroup_path = made[0].path if made else ""  # type: ignore[attr-defined]
            st.pid = pid
            st.pid_start = state_mod.process_start_time(pid)
            sd.save(st)
            _save_config(sd, raw_spec)

        try:
            init_pid = bootstrap.spawn(
                cfg,
                requested,
                lambda: _make_cgroup(linux, container_id),
                lambda cgroup: _limit_cgroup(cgroup, linux),
                cfg.state,
                made,
                record,
            )
        except ChildError as exc:
            raise InvalidArgument(f"container init failed: {exc}") from None
        finally:
            os.close(fifo_fd)
            if console_fd >= 0 and console_fd != opts.console_fd:
                os.close(console_fd)
        if opts.pid_file:
            write_pid_file(opts.pid_file, init_pid)
        return st
    except BaseException as exc:
        if opts.fifo_reader >= 0:
            os.close(opts.fifo_reader)
            opts.fifo_reader = -1
        _undo(sd, made[0] if made else None, init_pid, exc)
        raise


def load_bundle(path: str) -> tuple[str, dict, bytes]:
    """The bundle's absolute path, its validated spec and the spec's bytes."""
    bundle = os.path.abspath(path)
    if not os.path.isdir(bundle):
        raise NotFound(f"bundle {path!r} does not exist")
    spec, raw = runtime_spec.load_with_raw(bundle)
    return bundle, spec, raw


def _precheck(spec: dict, opts: CreateOptions, root: str) -> None:
    """Refuse what would fail later in the child, while the error is still cheap and clear."""
    proc = spec["process"]
    if proc.get("terminal") and opts.console_fd < 0 and not opts.console_socket and opts.detach:
        raise InvalidArgument("process.terminal is true: a detached container needs --console-socket")
    # rlimits and capability names are checked after the fork (bootstrap.spawn, init.check_process) while
    # the child builds the rootfs; their errors fail `create` just the same.
    if spec.get("linux", {}).get("seccomp"):
        from kobako.runtime.security import seccomp

        # Compiled here (and cached under the state root): the init only installs it.
        seccomp.build(spec["linux"]["seccomp"], cache_dir=os.path.join(root, ".seccomp"))
    for i, ns in enumerate(spec.get("linux", {}).get("namespaces", [])):
        if ns.get("path") and not os.path.exists(ns["path"]):
            raise NotFound(f"config.json: linux.namespaces[{i}].path {ns['path']!r} does not exist")


def _make_cgroup(linux: dict, container_id: str) -> object | None:
    from kobako.cgroups import new_manager

    mgr = new_manager(linux.get("cgroupsPath") or None, container_id)
    mgr.create()
    return mgr


def _limit_cgroup(mgr: object, linux: dict) -> None:
    from kobako.runtime.devices import cgroup_rules

    resources = dict(linux.get("resources") or {})
    if resources.get("devices") or linux.get("devices"):
        resources["devices"] = cgroup_rules(linux)
    if resources:
        mgr.apply(resources)  # type: ignore[attr-defined]


def _connect(path: str) -> int:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise NotFound(f"cannot connect to console socket {path!r}: {exc.strerror}") from exc
    fd = sock.detach()
    os.set_inheritable(fd, False)
    return fd


def _save_config(sd: StateDir, raw_spec: bytes) -> None:
    """Keep the spec the container was made from: `exec` reuses its seccomp profile and defaults."""
    fd = os.open(os.path.join(sd.path, "config.json"), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, raw_spec)
    finally:
        os.close(fd)


def write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.kobako-tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _undo(sd: StateDir, cgroup: object | None, init_pid: int, exc: BaseException) -> None:
    """Leave nothing behind after a failed create; cleanup failures ride on the original error."""
    steps = []
    if init_pid:
        steps.append(lambda: os.kill(init_pid, 9))
    if cgroup is not None:
        steps.append(lambda: (cgroup.kill_all(9), cgroup.remove()))  # type: ignore[attr-defined]
    steps.append(sd.remove)
    for step in steps:
        try:
            step()
        except ProcessLookupError:
            pass
        except Exception as cleanup_exc:
            if isinstance(exc, KobakoError):
                exc.add_cleanup_error(cleanup_exc)

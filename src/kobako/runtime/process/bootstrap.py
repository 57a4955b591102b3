"""The fork chain that makes a container: parent → intermediate → init.

- parent (the CLI): forks first, then makes the cgroup (announced at once, so the child can join it)
  and writes its limits while the intermediate already unshares namespaces and builds the rootfs
  (two cores, two processes); writes the user-namespace id maps; checks rlimits and capability
  names meanwhile; learns the init's PID; runs createRuntime hooks. The init waits for LIMITED
  before it reports READY: no user code runs unlimited.
- intermediate: moves itself into the cgroup as soon as it exists (a single-threaded process moving
  itself skips the cgroup v1 lock whose first taker waits out an RCU grace period, 5-15 ms; a parent
  writing the child's PID would pay it), makes the user namespace (maps come from the parent, which
  holds the host privileges), joins namespaces given by path, unshares the rest — the cgroup namespace
  last, so it is rooted at the container's cgroup — and forks; a new PID namespace only applies to
  children, so the fork is what puts the init in it as PID 1. It reports the init PID and exits.
- init: see ``init.py``.
"""

from __future__ import annotations

import os

from kobako.runtime import hooks as hooks_mod
from kobako.runtime import namespaces
from kobako.runtime import syscalls as sc
from kobako.runtime.process.channel import (
    CGROUP,
    GO,
    HOOKS,
    LIMITED,
    MAPPED,
    PID,
    READY,
    USERNS,
    Channel,
    ChildError,
    fork_reporting,
    report_error,
)
from kobako.runtime.process.config import InitConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def spawn(
    cfg: InitConfig,
    requested: dict[str, str],
    make_cgroup: Callable[[], object | None],
    limit_cgroup: Callable[[object], None],
    hook_state: dict,
    made: list[object],
    on_init: Callable[[int], None],
) -> int:
    """Start the chain; return the init's PID once it is READY (waiting on the exec fifo).

    ``make_cgroup`` runs in the parent after the fork; what it returns is appended to ``made`` at once,
    so the caller can clean it up whatever fails later; ``limit_cgroup(cgroup)`` writes its limits
    once the child knows where to go. ``on_init(pid)`` runs as soon as the init's PID
    is known (the caller records its state while the init works).
    """
    direct = _can_fork_init_directly(requested)
    parent, child = Channel.pair()
    restore = _unshare_for_children(cfg, requested) if direct else None

    def first_child() -> None:  # the intermediate, or with `direct` the init itself
        if direct:
            _enter_namespaces(cfg, requested, child, direct=True)
            _run_init(cfg, child)
        _intermediate(cfg, requested, child)

    try:
        pid = fork_reporting(first_child, parent, child)
    finally:
        if restore is not None:
            restore()  # only the parent gets here: the child always _exits
    child.close()
    init_pid = pid if direct else 0
    intermediate = 0 if direct else pid
    try:
        cgroup = make_cgroup()
        if cgroup is not None:
            made.append(cgroup)
        joining = [cgroup.path, *cgroup.join_files()] if cgroup is not None else [""]  # type: ignore[attr-defined]
        _tell(parent, CGROUP, "\0".join(joining))
        if "user" in requested and not requested["user"]:
            parent.expect(USERNS)
            write_id_maps(intermediate, cfg.spec["linux"])
            parent.send(MAPPED)
        if cgroup is not None:
            limit_cgroup(cgroup)
        _tell(parent, LIMITED)
        # While the child builds the rootfs: rlimits against the host's hard limits, capability names.
        # A bad one fails `create` as before (the child is killed below).
        from kobako.runtime.process.init import check_process

        check_process(cfg.spec["process"])
        hooks = cfg.spec.get("hooks", {})
        runtime_hooks = bool(hooks.get("prestart") or hooks.get("createRuntime"))
        first = HOOKS if runtime_hooks else READY
        if direct:
            on_init(init_pid)
            parent.expect(first)
        else:
            # The intermediate's PID report and the init's first message may arrive in either order.
            init_pid = int(parent.expect_all(PID, first)[PID])
            os.waitpid(intermediate, 0)
            intermediate = 0
            on_init(init_pid)
        if runtime_hooks:
            state = dict(hook_state, pid=init_pid)
            hooks_mod.run("prestart", hooks.get("prestart", []), state)
            hooks_mod.run("createRuntime", hooks.get("createRuntime", []), state)
            parent.send(GO)
            parent.expect(READY)
        return init_pid
    except BaseException:
        for p in (intermediate, init_pid):
            if p:
                try:
                    os.kill(p, 9)
                except ProcessLookupError:
                    pass
        for p in (intermediate, init_pid if direct else 0):
            if p:
                os.waitpid(p, 0)
        raise
    finally:
        parent.close()


def _tell(parent: Channel, kind: str, payload: str = "") -> None:
    try:
        parent.send(kind, payload)
    except BrokenPipeError:
        parent.expect(READY)  # the child failed first: raise with the message it left for us
        raise


def _can_fork_init_directly(requested: dict[str, str]) -> bool:
    """Without a new user namespace, one fork is enough: the parent makes the PID (and time) namespace
    for its next child only, and the child unshares the rest itself. A new user namespace must own
    the others, so it needs the intermediate; joining a PID or time namespace by path does too."""
    if "user" in requested:
        return False
    return not requested.get("pid") and not requested.get("time")


def _unshare_for_children(cfg: InitConfig, requested: dict[str, str]) -> Callable[[], None] | None:
    """Make the new PID/time namespaces the parent's *children* will be born in; return the undo."""
    flags = namespaces.new_flags({k: v for k, v in requested.items() if k in ("pid", "time")})
    if not flags:
        return None
    saved = {kind: os.open(f"/proc/self/ns/{namespaces.PROC_NAMES[kind]}_for_children", os.O_RDONLY | os.O_CLOEXEC)
             for kind in ("pid", "time") if kind in requested}  # fmt: skip
    try:
        sc.linux.unshare(flags)
        _write_time_offsets(cfg, requested)
    except BaseException:
        _restore(saved)
        raise
    return lambda: _restore(saved)


def _restore(saved: dict[str, int]) -> None:
    # Back to our own namespaces for later children (hooks must not run in the container's PID namespace).
    try:
        for kind, fd in saved.items():
            sc.linux.setns(fd, namespaces.FLAGS[kind])
    finally:
        for fd in saved.values():
            os.close(fd)


def _write_time_offsets(cfg: InitConfig, requested: dict[str, str]) -> None:
    offsets = cfg.spec.get("linux", {}).get("timeOffsets")
    if offsets and "time" in requested and not requested["time"]:
        # Offsets apply to the children of the unsharing process, and only before the first one exists.
        with open("/proc/self/timens_offsets", "w") as f:
            for clock, value in offsets.items():
                f.write(f"{clock} {value.get('secs', 0)} {value.get('nanosecs', 0)}\n")


def _enter_namespaces(cfg: InitConfig, requested: dict[str, str], chan: Channel, direct: bool) -> None:
    """In the forked child: import the init's modules, join the cgroup, make and join namespaces."""
    sc.linux.prctl(sc.PR_SET_DUMPABLE, 0)  # nothing in the container may open /proc/<us>/exe
    # While the parent makes the cgroup: import what the init needs (a later fork inherits them).
    from kobako.runtime.process.init import preload

    spec = cfg.spec
    hooks = spec.get("hooks", {})
    preload(
        spec["process"],
        spec.get("linux", {}).get("seccomp"),
        bool(hooks.get("startContainer") or hooks.get("createContainer")),
    )
    new_user = "user" in requested and not requested["user"]
    # Joining the cgroup needs the host's view of cgroupfs and host-root credentials: before a user
    # namespace or a foreign mount namespace; otherwise it overlaps with the (slow) unshare below.
    early_cgroup = new_user or bool(requested.get("mount"))
    if early_cgroup:
        cfg.cgroup_path = _join_cgroup(chan)
    if new_user:
        sc.linux.unshare(sc.CLONE_NEWUSER)
        chan.send(USERNS)
        chan.expect(MAPPED)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    for_children = ("pid", "time") if direct else ()
    namespaces.join(requested, kinds=tuple(k for k in namespaces.ORDERED if k not in for_children))
    flags = namespaces.new_flags(requested, skip=("user", "cgroup", *for_children))
    if flags:
        sc.linux.unshare(flags)
    new_cgroupns = "cgroup" in requested and not requested["cgroup"]

    def join_cgroup() -> None:
        cfg.cgroup_path = _join_cgroup(chan)
        if new_cgroupns:
            sc.linux.unshare(sc.CLONE_NEWCGROUP)

    if early_cgroup:
        if new_cgroupns:
            sc.linux.unshare(sc.CLONE_NEWCGROUP)
    elif direct:
        # The init itself: it builds its rootfs while the parent writes the cgroup, and joins it just
        # before the first thing that needs it (the cgroup mount, or the end of the mounts).
        cfg.join_cgroup = join_cgroup
    else:
        join_cgroup()
    if not direct:
        _write_time_offsets(cfg, requested)


def _intermediate(cfg: InitConfig, requested: dict[str, str], chan: Channel) -> None:
    _enter_namespaces(cfg, requested, chan, direct=False)
    init_pid = os.fork()
    if init_pid == 0:
        _run_init(cfg, chan)
    chan.send(PID, str(init_pid))


def _run_init(cfg: InitConfig, chan: Channel) -> None:
    """Run the container init; never returns (execve, or report and exit)."""
    from kobako.runtime.process.init import container_init

    try:
        container_init(cfg, chan)
    except BaseException as exc:
        report_error(chan, exc)
    os._exit(1)


def _join_cgroup(chan: Channel) -> str:
    """Move in with the files the parent named (no mountinfo to read here); return the cgroup path."""
    path, *files = chan.expect(CGROUP).split("\0")
    if files:
        from kobako.cgroups.base import join_files

        join_files(files)
    return path


def write_id_maps(pid: int, linux: dict) -> None:
    """Write uid_map/gid_map of ``pid`` from the spec's mappings (we hold the host privileges)."""
    for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        maps = linux.get(key, [])
        if not maps:
            continue
        if name == "gid_map" and os.geteuid() != 0:
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        except OSError as exc:
            raise ChildError(f"writing {name} {text.strip()!r}: {exc.strerror}") from exc

"""The fork chain that makes a container: parent → intermediate → init.

- parent (the CLI): forks first, then makes the cgroup and applies its limits while the intermediate
  already unshares namespaces and imports the init's modules (two cores, two processes); writes the
  user-namespace id maps; learns the init's PID; runs createRuntime hooks.
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
from kobako.runtime.process.channel import CGROUP, GO, HOOKS, MAPPED, PID, READY, USERNS, Channel, ChildError
from kobako.runtime.process.config import InitConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def spawn(
    cfg: InitConfig,
    requested: dict[str, str],
    make_cgroup: Callable[[], object | None],
    hook_state: dict,
    made: list[object],
) -> int:
    """Start the chain; return the init's PID once it is READY (waiting on the exec fifo).

    ``make_cgroup`` runs in the parent after the fork; what it returns is appended to ``made`` at once,
    so the caller can clean it up whatever fails later.
    """
    parent, child = Channel.pair()
    pid = os.fork()
    if pid == 0:  # intermediate
        code = 1
        try:
            parent.close()
            _intermediate(cfg, requested, child)
            code = 0
        except BaseException as exc:
            _report(child, exc)
        finally:
            os._exit(code)
    child.close()
    init_pid = 0
    try:
        cgroup = make_cgroup()
        if cgroup is not None:
            made.append(cgroup)
        parent.send(CGROUP, cgroup.path if cgroup is not None else "")  # type: ignore[attr-defined]
        if "user" in requested and not requested["user"]:
            parent.expect(USERNS)
            write_id_maps(pid, cfg.spec["linux"])
            parent.send(MAPPED)
        hooks = cfg.spec.get("hooks", {})
        runtime_hooks = bool(hooks.get("prestart") or hooks.get("createRuntime"))
        # The intermediate's PID report and the init's first message may arrive in either order.
        init_pid = int(parent.expect_all(PID, HOOKS if runtime_hooks else READY)[PID])
        os.waitpid(pid, 0)
        pid = 0
        if runtime_hooks:
            state = dict(hook_state, pid=init_pid)
            hooks_mod.run("prestart", hooks.get("prestart", []), state)
            hooks_mod.run("createRuntime", hooks.get("createRuntime", []), state)
            parent.send(GO)
            parent.expect(READY)
        return init_pid
    except BaseException:
        for p in (pid, init_pid):
            if p:
                try:
                    os.kill(p, 9)
                except ProcessLookupError:
                    pass
        if pid:
            os.waitpid(pid, 0)
        raise
    finally:
        parent.close()


def _intermediate(cfg: InitConfig, requested: dict[str, str], chan: Channel) -> None:
    sc.linux.prctl(sc.PR_SET_DUMPABLE, 0)  # nothing in the container may open /proc/<us>/exe
    # While the parent makes the cgroup: import what the init needs (it is our fork, it inherits them).
    from kobako.runtime.process.init import container_init, preload

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
    namespaces.join(requested)
    flags = namespaces.new_flags(requested, skip=("user", "cgroup"))
    if flags:
        sc.linux.unshare(flags)
    if not early_cgroup:
        cfg.cgroup_path = _join_cgroup(chan)
    if "cgroup" in requested and not requested["cgroup"]:
        sc.linux.unshare(sc.CLONE_NEWCGROUP)
    offsets = spec.get("linux", {}).get("timeOffsets")
    if offsets and "time" in requested and not requested["time"]:
        # Offsets apply to the children of the unsharing process, and only before the first one exists.
        with open("/proc/self/timens_offsets", "w") as f:
            for clock, value in offsets.items():
                f.write(f"{clock} {value.get('secs', 0)} {value.get('nanosecs', 0)}\n")
    init_pid = os.fork()
    if init_pid == 0:
        code = 1
        try:
            container_init(cfg, chan)
        except BaseException as exc:
            _report(chan, exc)
        finally:
            os._exit(code)
    chan.send(PID, str(init_pid))


def _join_cgroup(chan: Channel) -> str:
    path = chan.expect(CGROUP)
    if path:
        from kobako.cgroups import load_manager

        load_manager(path).join()
    return path


def _report(chan: Channel, exc: BaseException) -> None:
    if os.environ.get("KOBAKO_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    try:
        if isinstance(exc, OSError) and exc.strerror:
            msg = exc.strerror
            if exc.filename and str(exc.filename) not in msg:
                msg += f": {exc.filename}"
        else:
            msg = str(exc) or type(exc).__name__
    except Exception:
        msg = type(exc).__name__
    try:
        chan.send("error", msg)
    except OSError:
        # Past READY the parent has stopped listening: the container's stderr is all that is left.
        try:
            os.write(2, f"kobako-runtime: container process: {msg}\n".encode())
        except OSError:
            pass


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

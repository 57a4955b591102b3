"""exec: run another process in a created or running container.

parent → joiner (set non-dumpable, placed in the cgroup, joins the init's namespaces; setns into a PID
namespace only applies to children) → process (identity, capabilities, seccomp, execve).
"""

from __future__ import annotations

import os

from kobako.errors import Conflict, InvalidArgument
from kobako.oci import jsoncodec, runtime_spec
from kobako.runtime import container, namespaces
from kobako.runtime import status as st_mod
from kobako.runtime import syscalls as sc
from kobako.runtime.process.channel import PID, READY, Channel, ChildError, fork_reporting, report_error
from kobako.runtime.process.init import become_process, find_executable, with_home


class ExecOptions:
    def __init__(
        self,
        process: dict,
        detach: bool = False,
        pid_file: str | None = None,
        console_socket: str | None = None,
        preserve_fds: int = 0,
        console_fd: int = -1,
    ) -> None:
        self.process = process
        self.detach = detach
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.preserve_fds = preserve_fds
        self.console_fd = console_fd  # a socket to send the pty master on (instead of console_socket)


def container_spec(root: str, container_id: str) -> dict:
    path = os.path.join(root, container_id, "config.json")
    with open(path, "rb") as f:
        return jsoncodec.loads(f.read(), what=path)


def process_from_args(base: dict, args: list[str], tty: bool, cwd: str | None, env: list[str], user: str | None,
                      caps: list[str], no_new_privs: bool | None) -> dict:  # fmt: skip
    """Build an exec process from CLI flags on top of the container's own process (as runc does)."""
    if not args:
        raise InvalidArgument("exec needs a command (ARGS...) or --process FILE")
    proc = {
        "args": args,
        "env": list(base.get("env", [])) + env,
        "cwd": cwd or base.get("cwd", "/"),
        "terminal": tty,
        "user": dict(base.get("user", {"uid": 0, "gid": 0})),
        "noNewPrivileges": base.get("noNewPrivileges", False) if no_new_privs is None else no_new_privs,
    }
    if "capabilities" in base:
        proc["capabilities"] = {k: list(v) for k, v in base["capabilities"].items()}
        for key in ("bounding", "effective", "permitted", "ambient"):
            proc["capabilities"].setdefault(key, [])
            proc["capabilities"][key] += [c for c in caps if c not in proc["capabilities"][key]]
    if "rlimits" in base:
        proc["rlimits"] = base["rlimits"]
    if user:
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise InvalidArgument(f"--user must be UID[:GID] in numbers, got {user!r}")
        proc["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    return proc


def exec_process(root: str, container_id: str, opts: ExecOptions) -> int:
    _sd, st = container.load(root, container_id)
    if not st_mod.can_exec(st.status):
        raise Conflict(f"cannot exec in container {container_id!r}: it is {st.status}")
    proc = opts.process
    runtime_spec.validate_process(proc)
    spec = container_spec(root, container_id)
    if proc.get("terminal") and not opts.console_socket and opts.console_fd < 0:
        raise InvalidArgument("exec --tty needs --console-socket")
    console_fd = opts.console_fd
    if console_fd < 0 and opts.console_socket:
        from kobako.runtime.lifecycle.create import _connect

        console_fd = _connect(opts.console_socket)
    to_join = _namespaces_of(st.pid)
    cgroup = container.cgroup_of(st)
    if not opts.detach:
        sc.linux.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    parent, child = Channel.pair()
    joiner = fork_reporting(
        lambda: _joiner(proc, spec, to_join, child, console_fd, opts.preserve_fds, cgroup), parent, child
    )
    child.close()
    if console_fd >= 0 and console_fd != opts.console_fd:
        os.close(console_fd)
    pid = 0
    try:
        pid = int(parent.expect_all(PID, READY)[PID])
        os.waitpid(joiner, 0)
        joiner = 0
    except ChildError as exc:
        for p in (joiner, pid):
            if p:
                try:
                    os.kill(p, 9)
                except ProcessLookupError:
                    pass
        if joiner:
            os.waitpid(joiner, 0)
        raise InvalidArgument(f"exec failed: {exc}") from None
    finally:
        parent.close()
    if opts.pid_file:
        from kobako.runtime.lifecycle.create import write_pid_file

        write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    from kobako.runtime.lifecycle.run import wait_exit_code
    from kobako.runtime.signals import forward_to

    forward_to(pid)
    return wait_exit_code(pid)


def _namespaces_of(pid: int) -> dict[str, str]:
    """The init's namespaces that differ from ours: those are the ones to join."""
    out = {}
    for kind, name in namespaces.PROC_NAMES.items():
        theirs = f"/proc/{pid}/ns/{name}"
        try:
            if os.stat(theirs).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                out[kind] = theirs
        except FileNotFoundError:
            continue
    return out


def _joiner(
    proc: dict,
    spec: dict,
    to_join: dict[str, str],
    chan: Channel,
    console_fd: int,
    preserve_fds: int,
    cgroup: object | None,
) -> None:
    sc.linux.prctl(sc.PR_SET_DUMPABLE, 0)  # the container must not reach us through /proc/<pid>/exe
    from kobako.runtime import rlimits
    from kobako.runtime.process.init import _env_dict, _setup_console, preload

    preload(proc, spec.get("linux", {}).get("seccomp"), needs_subprocess=False)
    if cgroup is not None:
        cgroup.join()  # type: ignore[attr-defined]
    fds = {kind: os.open(path, os.O_RDONLY | os.O_CLOEXEC) for kind, path in to_join.items()}
    try:
        for kind in namespaces.ORDERED:
            if kind in fds:
                sc.linux.setns(fds[kind], namespaces.FLAGS[kind])
    finally:
        for fd in fds.values():
            os.close(fd)
    pid = os.fork()
    if pid == 0:
        code = 127
        try:
            os.chdir("/")
            if proc.get("terminal") and console_fd >= 0:
                _setup_console(console_fd)
            env = with_home(proc.get("env", []), proc.get("user", {}).get("uid", 0))
            executable = find_executable(proc["args"][0], env)
            if proc.get("rlimits"):
                rlimits.apply(proc["rlimits"])
            seccomp = spec.get("linux", {}).get("seccomp")
            become_process(proc, seccomp, preserve_fds)
            chan.send(READY)
            chan.close()
            os.execve(executable, proc["args"], _env_dict(env))
        except BaseException as exc:
            report_error(chan, exc)
        finally:
            os._exit(code)
    chan.send(PID, str(pid))

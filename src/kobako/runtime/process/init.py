"""The container's init: runs in the new namespaces and ends in execve of the user's process.

Steps, in order (each needs the one before):
 1. oom_score_adj, rootfs mounts, then /dev once the parent wrote the cgroup limits (host paths)
 2. createRuntime hooks (run by the parent), then createContainer hooks (here)
 3. pivot_root into the rootfs
 4. hostname, domainname, sysctls                    (before /proc/sys is made read-only)
 5. console: a pty whose master goes to the console socket
 6. read-only root, read-only and masked paths
 7. rlimits; find the executable                     (errors up to here fail `create`)
 8. tell the parent READY; block on the exec fifo until `start`
 9. startContainer hooks
10. seccomp now if it cannot wait for no_new_privs; identity (groups, gid, uid) keeping capabilities;
    capabilities; no_new_privs; seccomp; close stray fds; execve
"""

from __future__ import annotations

import os

from kobako.runtime import hooks as hooks_mod
from kobako.runtime import rlimits
from kobako.runtime import syscalls as sc
from kobako.runtime.process.channel import HOOKS, LIMITED, READY, Channel
from kobako.runtime.process.config import InitConfig
from kobako.runtime.rootfs import RootfsBuilder
from kobako.runtime.signals import forward_to

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def container_init(cfg: InitConfig, chan: Channel) -> None:
    """Never returns: execs the user process or raises (the caller reports and _exits)."""
    spec = cfg.spec
    proc = spec["process"]
    linux = spec.get("linux", {})
    hooks = spec.get("hooks", {})
    if "oomScoreAdj" in proc:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(proc["oomScoreAdj"]))
    fifo_fd = cfg.fifo_fd
    preload(proc, linux.get("seccomp"), bool(hooks.get("startContainer") or hooks.get("createContainer")))

    if not cfg.no_new_keyring:
        try:
            sc.linux.join_session_keyring(f"_ses.{cfg.state['id']}")
        except OSError as exc:
            if exc.errno != 38:  # ENOSYS: a kernel without keys; nothing to isolate
                raise

    def joined() -> None:
        if cfg.join_cgroup is not None:
            step, cfg.join_cgroup = cfg.join_cgroup, None
            step()
            builder.cgroup_path = cfg.cgroup_path

    limited = False

    def wait_for_limits() -> None:
        # The parent writes the cgroup's limits while we mount; the devices rules (deny all, then the
        # allow list) must be complete before mknod, and everything before the user's process runs.
        nonlocal limited
        if not limited:
            chan.expect(LIMITED)
            limited = True

    builder = RootfsBuilder(spec, cfg.rootfs, before_cgroup_mount=joined, before_devices=wait_for_limits)
    builder.cgroup_path = cfg.cgroup_path
    if cfg.new_mount_ns:
        builder.prepare()
    joined()
    if hooks.get("prestart") or hooks.get("createRuntime"):
        chan.send(HOOKS)
        wait_for_limits()  # the parent writes the limits before it runs these hooks
        chan.expect("go")
    hooks_mod.run("createContainer", hooks.get("createContainer", []), cfg.state)
    if cfg.new_mount_ns:
        builder.pivot(cfg.no_pivot)
    else:
        os.chroot(cfg.rootfs)
        os.chdir("/")

    if cfg.new_uts_ns:
        if spec.get("hostname"):
            sc.linux.sethostname(spec["hostname"])
        if spec.get("domainname"):
            sc.linux.setdomainname(spec["domainname"])
    for key, value in linux.get("sysctl", {}).items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)

    if proc.get("terminal") and cfg.console_fd >= 0:
        _setup_console(cfg.console_fd)
    if cfg.new_mount_ns:
        builder.finish()
    rlimits.apply(proc.get("rlimits", []))
    env = with_home(proc.get("env", []), proc.get("user", {}).get("uid", 0))
    executable = find_executable(proc["args"][0], env)
    cwd = proc.get("cwd", "/")
    if not os.path.isdir(cwd):
        try:
            os.makedirs(cwd, 0o755)  # as runc does; a read-only root leaves it to fail at chdir
        except OSError:
            pass

    wait_for_limits()
    chan.send(READY)
    chan.close()
    if fifo_fd >= 0:
        # Blocks until `start` opens the fifo for reading: this is the create/start barrier.
        wfd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(wfd, b"0")
        os.close(wfd)
        os.close(fifo_fd)
    hooks_mod.run("startContainer", hooks.get("startContainer", []), cfg.state)
    become_process(proc, linux.get("seccomp"), cfg.preserve_fds)
    if spec.get("annotations", {}).get(INIT_ANNOTATION) == "true":
        reap_as_init(executable, proc["args"], _env_dict(env))
    os.execve(executable, proc["args"], _env_dict(env))


INIT_ANNOTATION = "org.kobako.init"


def reap_as_init(executable: str, args: list[str], env: dict[str, str]) -> None:
    """`--init`: stay as PID 1 (already stripped to the process's identity, capabilities and seccomp),
    run the user's process as our child, forward signals to it, reap every orphan, and exit as it did."""
    child = os.fork()
    if child == 0:
        os.execve(executable, args, env)
    forward_to(child)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def preload(proc: dict, seccomp: dict | None, needs_subprocess: bool) -> None:
    """Import now what the steps after pivot_root import lazily: after it, the host's Python library is gone.

    (The same holds after setns into a container's mount namespace in ``exec``.)
    """
    from kobako.runtime.security import preload as preload_security

    preload_security(seccomp=bool(seccomp))
    if proc.get("terminal"):
        import socket  # noqa: F401
        import termios  # noqa: F401
    if needs_subprocess:
        import subprocess  # noqa: F401


def check_process(proc: dict) -> None:
    """What the parent leaves to the child to check: rlimits against the host, capability names."""
    if proc.get("rlimits"):
        rlimits.check(proc["rlimits"])
    caps = proc.get("capabilities")
    if caps:
        from kobako.runtime.security import capabilities

        for key, names in caps.items():
            capabilities.parse(names, field=f"process.capabilities.{key}")


def become_process(proc: dict, seccomp: dict | None, preserve_fds: int) -> None:
    """Identity, capabilities, no_new_privs and seccomp: the last steps before execve (init and exec)."""
    from kobako.runtime.security import capabilities

    nnp = proc.get("noNewPrivileges", False)
    if seccomp and not nnp:
        # Without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes in before capabilities drop.
        _load_seccomp(seccomp)
    user = proc.get("user", {})
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    caps = proc.get("capabilities")
    if caps is not None:
        capabilities.set_keep_caps(True)
    os.setgroups(user.get("additionalGids", []))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if "umask" in user:
        os.umask(user["umask"])
    cwd = proc.get("cwd", "/")
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise OSError(exc.errno, f"chdir to cwd {cwd!r} set in config.json failed: {exc.strerror}") from exc
    if caps is not None:
        capabilities.apply(caps)
        capabilities.set_keep_caps(False)
    if nnp:
        sc.linux.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if seccomp:
            _load_seccomp(seccomp)
    _close_stray_fds(3 + preserve_fds)
    _default_signals()


def _default_signals() -> None:
    """The container's process starts with default signal dispositions: an ignored signal survives
    execve (Python itself ignores SIGPIPE and SIGXFSZ; our caller may have ignored others)."""
    import _signal

    for signum in range(1, _signal.NSIG):
        if signum in (9, 19):  # SIGKILL and SIGSTOP cannot be changed
            continue
        if signum in (32, 33):  # the C library hides these from sigaction(): Python cannot even see them
            _raw_default(signum)
            continue
        try:
            if _signal.getsignal(signum) == _signal.SIG_IGN:
                _signal.signal(signum, _signal.SIG_DFL)
        except (OSError, ValueError):
            _raw_default(signum)


_SYS_RT_SIGACTION = 13  # x86_64


def _raw_default(signum: int) -> None:
    """rt_sigaction(signum, {SIG_DFL}) straight to the kernel, for the signals libc will not touch."""
    from kobako import libc

    action = libc.u32_array([0] * 8)  # struct kernel_sigaction: handler, flags, restorer, mask — all zero
    try:
        libc.call_long(
            "syscall", libc.ulong(_SYS_RT_SIGACTION), libc.ulong(signum), action, None, libc.ulong(8)
        )
    except OSError:
        pass


def _load_seccomp(profile: dict) -> None:
    from kobako.runtime.security import seccomp

    seccomp.load(profile)


def _setup_console(console_fd: int) -> None:
    import fcntl
    import socket
    import termios

    master, slave = os.openpty()
    sock = socket.socket(fileno=console_fd)
    try:
        sock.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, master.to_bytes(4, "little"))])
    finally:
        sock.close()
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    # /dev/console in the container is the pty, as runc does.
    try:
        if not os.path.exists("/dev/console"):
            with open("/dev/console", "w"):
                pass
        sc.linux.mount(os.ttyname(slave), "/dev/console", None, sc.MS_BIND, None)
    except OSError:
        pass  # a read-only /dev: the pty is still the process's stdio
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def _env_dict(env: list[str]) -> dict[str, str]:
    out = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
    return out


def find_executable(name: str, env: list[str]) -> str:
    """Resolve args[0] like execvp would, with the container's PATH; a clear error if it is missing."""
    if "/" in name:
        if not os.path.exists(name):
            raise FileNotFoundError(2, f"exec: {name!r}: no such file or directory in the container")
        if not os.path.isfile(name) or not os.access(name, os.X_OK):
            raise PermissionError(13, f"exec: {name!r}: permission denied")
        return name
    path = _env_dict(env).get("PATH", DEFAULT_PATH)
    for d in path.split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(2, f"exec: {name!r}: executable file not found in $PATH")


def with_home(env: list[str], uid: int) -> list[str]:
    """Add HOME from the container's /etc/passwd (or /) when the spec does not set it, as runc does."""
    if any(item.startswith("HOME=") for item in env):
        return env
    home = "/"
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f.read(1 << 20).decode(errors="replace").splitlines():
                fields = line.split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    home = fields[5] or "/"
                    break
    except OSError:
        pass
    return [*env, f"HOME={home}"]


_CLOSE_RANGE_CLOEXEC = 4


def _close_stray_fds(first: int) -> None:
    """Mark every fd from ``first`` on close-on-exec, so only stdio and --preserve-fds reach the process."""
    from kobako import libc

    try:  # one syscall (Linux 5.11+); the fds we still use until execve stay open
        libc.call("close_range", first, 0xFFFFFFFF, _CLOSE_RANGE_CLOEXEC)
        return
    except (OSError, AttributeError):
        pass
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass

"""Run one build command in a real container over a mounted snapshot, and undo the runtime's traces.

The spec comes from the engine's generator (Podman's defaults: capabilities, seccomp, masked paths, a pids
limit) with network none, then the image config's user, working directory and environment. The runtime
runs in a forked child (``kobako.runtime.lifecycle.run`` in the foreground: it waits, forwards signals and
deletes the container) whose stdout and stderr are one pipe, so the builder can stream the output and keep
its tail for an error message. No second interpreter starts.

The runtime creates mount points in the root filesystem (``/etc/hosts`` for a bind mount, ``/proc`` in an
image without one). Docker keeps those in an init layer that is never committed; here they are removed after
the run if they were created by it, and directories that only got copied up to the overlay upper dir because
of them are dropped, so a ``RUN true`` makes no layer.
"""

from __future__ import annotations

import os
import stat

from kobako.runtime.securepath import resolve as resolve_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

TAIL = 16 << 10


def spec_for(container_id: str, rootfs: str, argv: list[str], env: list[str], user: str, workdir: str,
             extra_mounts: list[dict], userdata: str) -> dict:  # fmt: skip
    from kobako.engine import specgen
    from kobako.engine.runopts import RunOptions

    opts = RunOptions()
    opts.network = "none"
    opts.entrypoint = ""
    opts.command = list(argv)
    opts.user = user
    opts.workdir = workdir or "/"
    return specgen.generate(container_id, {"Env": env}, opts, rootfs, extra_mounts, userdata)


def run(
    runtime_root: str, container_id: str, bundle: str, spec: dict, on_output: Callable[[bytes], None]
) -> tuple[int, bytes]:
    """Run the bundle's container to its end; (exit code, last bytes of its output)."""
    import json

    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends in os._exit
        _child(runtime_root, container_id, bundle, r, w)
    os.close(w)
    tail = bytearray()
    try:
        while True:
            try:
                data = os.read(r, 65536)
            except InterruptedError:
                continue
            if not data:
                break
            on_output(data)
            tail += data
            if len(tail) > TAIL:
                del tail[: len(tail) - TAIL]
    except BaseException:
        import signal

        try:
            os.kill(pid, signal.SIGTERM)  # the foreground runtime forwards it, then deletes the container
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return (code if code >= 0 else 128 - code), bytes(tail)


def _child(runtime_root: str, container_id: str, bundle: str, r: int, w: int) -> None:  # pragma: no cover
    code = 125
    try:
        import signal

        os.close(r)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(null)
        os.close(w)
        # Python ignores SIGPIPE and an ignored signal survives execve: the build command gets the default.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        from kobako.runtime.lifecycle.create import CreateOptions
        from kobako.runtime.lifecycle.run import run as runtime_run

        code = runtime_run(runtime_root, container_id, CreateOptions(bundle=bundle, detach=False))
    except BaseException as exc:
        try:
            os.write(2, f"kobako: cannot run the build container: {exc}\n".encode())
        except OSError:
            pass
    os._exit(code & 0xFF)


class MountPoints:
    """Mount destinations that do not exist in the root filesystem before the run (see the docstring)."""

    def __init__(self, rootfs: str, spec_mounts: list[dict]) -> None:
        self.rootfs = rootfs
        dests = sorted({os.path.normpath(m["destination"]) for m in spec_mounts})
        self.created: list[tuple[str, str, list[tuple[str, str]]]] = []
        self.times: dict[str, tuple[int, int]] = {}  # parents the mount points go into: their times
        for d in dests:
            if any(o != d and d.startswith(o.rstrip("/") + "/") for o in dests):
                continue  # made on another mount (/dev/pts on /dev), not in the root filesystem
            host = resolve_in_root(rootfs, d)
            if os.path.lexists(host):
                continue
            missing = []
            parent = os.path.dirname(d)
            while parent != "/":
                parent_host = resolve_in_root(rootfs, parent)
                if os.path.lexists(parent_host):
                    break
                missing.append((parent, parent_host))
                parent = os.path.dirname(parent)
            self.created.append((d, host, missing))
            existing = os.path.dirname(missing[-1][1] if missing else host)
            st = os.lstat(existing)
            self.times.setdefault(existing, (st.st_atime_ns, st.st_mtime_ns))

    def remove(self) -> list[str]:
        """Remove what the runtime created (if unchanged); return the existing parents they were made in,
        relative to the root (candidates for :func:`prune_copied_up`)."""
        parents = []
        for d, host, missing in self.created:
            if resolve_in_root(self.rootfs, d) != host:
                continue  # the command replaced a parent (a symlink now?): leave it alone
            _remove_empty(host)
            for path, path_host in missing:
                if resolve_in_root(self.rootfs, path) == path_host:
                    _remove_empty(path_host)
            top = missing[-1][1] if missing else host
            parents.append(os.path.relpath(os.path.dirname(top), self.rootfs))
        for path, times in self.times.items():  # a copying snapshotter would see the times as a change
            rel = "/" + os.path.relpath(path, self.rootfs)
            if resolve_in_root(self.rootfs, rel) != path:
                continue  # a parent was replaced (by a symlink?): never touch what it leads to
            try:
                os.utime(path, ns=times, follow_symlinks=False)
            except OSError:
                pass
        return parents


def _remove_empty(path: str) -> None:
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(path)
        elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(path)
    except OSError:
        pass  # not empty, or already gone: what the command made there stays


def _real_dirs(base: str, rel: str) -> bool:
    """Whether every component of ``rel`` below ``base`` is a directory, none a symlink (the command may have
    put links in the upper dir: nothing may be reached through them)."""
    path = base
    for part in rel.split("/"):
        path = os.path.join(path, part)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return False
        except OSError:
            return False
    return True


def prune_copied_up(upper: str, lowers: list[str], rel_dirs: list[str], opaque_xattr: str) -> None:
    """Drop directories of the upper dir that hold nothing and only differ from a lower one in times."""
    for rel in sorted(set(rel_dirs), key=lambda p: p.count("/"), reverse=True):
        while rel and rel != "." and _real_dirs(upper, rel):
            path = os.path.join(upper, rel)
            try:
                st = os.lstat(path)
                if os.listdir(path):
                    break
                try:
                    if os.getxattr(path, opaque_xattr, follow_symlinks=False) == b"y":
                        break
                except OSError:
                    pass
                lower = next(
                    (os.lstat(p) for p in (os.path.join(lo, rel) for lo in lowers) if os.path.lexists(p)),
                    None,
                )
                if lower is None or (lower.st_mode, lower.st_uid, lower.st_gid) != (
                    st.st_mode,
                    st.st_uid,
                    st.st_gid,
                ):
                    break
                os.rmdir(path)
            except OSError:
                break
            rel = os.path.dirname(rel)

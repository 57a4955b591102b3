"""Seccomp filters from an OCI ``linux.seccomp`` section.

Three steps, which the runtime can spread over its processes to keep container start fast:

* :func:`validate` checks a profile in pure Python (well under a millisecond for the default).
* :func:`build` validates it and compiles it to a :class:`Filter` (classic BPF plus seccomp(2)
  flags) with libseccomp. Compiling the ~370-name default profile for x86_64+x86+x32 costs
  libseccomp 15-35 ms, so results are memoized in the process (a forked init inherits them) and,
  given a ``cache_dir``, kept on disk keyed by the SHA-256 of the validated profile.
* :func:`install` loads a :class:`Filter` into the calling thread with one syscall (~1 ms, most
  of it the kernel checking the program).

:func:`load` is ``install(build(profile))``. The runtime should call :func:`build` (with its
``cache_dir``) in the parent before forking, then :func:`load` or :func:`install` in the child
right before execve: 1-2 ms there instead of ~20.

Semantics, matching runc where the spec is silent:

* A syscall name libseccomp does not know is skipped (profiles list calls of newer kernels and
  other architectures); a malformed profile (unknown action, operator, architecture or flag, a
  wrong type, an out-of-range number) raises :class:`~kobako.errors.InvalidArgument` naming the
  field, e.g. ``linux.seccomp.syscalls[3].args[0].op``.
* ``errnoRet``/``defaultErrnoRet`` default to EPERM and go only with SCMP_ACT_ERRNO/SCMP_ACT_TRACE.
* A rule whose action equals the default action is skipped (libseccomp refuses it).
* ``args`` with distinct indexes form one rule (all must match). When an index repeats, a rule
  cannot test one argument twice, so every comparison becomes a rule of its own (any one matching
  triggers the action): that is how runc reads e.g. two ``SCMP_CMP_EQ`` on argument 0.
* SCMP_ACT_NOTIFY, ``listenerPath`` and SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV are refused as not
  supported yet.
* Installing never sets no_new_privs (that is ``process.noNewPrivileges``'s job), so it needs
  either no_new_privs already set or CAP_SYS_ADMIN: the init loads the filter before dropping
  capabilities when noNewPrivileges is false, after it otherwise (as runc does).
"""

from __future__ import annotations

import errno
import os

from kobako.errors import FailedPrecondition, Internal, InvalidArgument, PermissionDenied, from_oserror
from kobako.runtime.security import _libc
from kobako.runtime.security import _seccomp_profile as _profile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_SET_MODE_FILTER = 1
# seccomp(2) numbers, needed only when flags are set (prctl cannot pass them).
_SYS_SECCOMP = {
    "x86_64": 317,
    "i386": 354,
    "i686": 354,
    "aarch64": 277,
    "riscv64": 277,
    "armv7l": 383,
    "armv6l": 383,
    "ppc64le": 358,
    "ppc64": 358,
    "s390x": 348,
}
_CACHE_MAGIC = b"KBKSC001"  # bump when the plan, the key or the file layout changes
_MEMO_SIZE = 16
_BPF_MAXINSNS = 4096  # the kernel's limit for one classic BPF program
_memo: dict[_profile.Plan, Filter] = {}


class Filter:
    """A compiled seccomp filter: ``struct sock_filter`` instructions and seccomp(2) flags."""

    __slots__ = ("bpf", "flags")

    def __init__(self, bpf: bytes, flags: int = 0) -> None:
        if not bpf or len(bpf) % 8 or len(bpf) > 8 * _BPF_MAXINSNS:
            raise InvalidArgument(
                f"seccomp: a filter is 1..{_BPF_MAXINSNS} 8-byte instructions, not {len(bpf)} bytes"
            )
        self.bpf = bytes(bpf)
        self.flags = flags

    @property
    def instructions(self) -> int:
        return len(self.bpf) // 8

    def __repr__(self) -> str:
        return f"Filter({self.instructions} instructions, flags={self.flags:#x})"


def validate(profile: Mapping[str, object]) -> None:
    """Check an OCI ``linux.seccomp`` section without loading anything; raise InvalidArgument if bad."""
    _profile.compile_profile(profile)


def build(profile: Mapping[str, object], *, cache_dir: str | None = None) -> Filter:
    """Validate ``profile`` and compile it, from the memo or ``cache_dir`` when already done.

    ``cache_dir`` is ignored once the process has entered a container's root: a path there would
    name a file the image controls.
    """
    plan = _profile.compile_profile(profile)
    if cache_dir and not _libc.in_host_root():
        cache_dir = None
    key = _key(plan) if cache_dir else ""
    flt = _memo.get(plan)  # the plan is a tuple of ints and strings: hashable, and exact
    if flt is not None:
        if cache_dir and not os.path.exists(os.path.join(cache_dir, key)):
            _cache_write(cache_dir, key, flt)
    elif cache_dir:
        flt = _cache_read(cache_dir, key)
    if flt is None:
        compiler = _libc.host_module("kobako.runtime.security._libseccomp")
        flt = Filter(compiler.generate(plan), plan[2])
        if cache_dir:
            _cache_write(cache_dir, key, flt)
    if len(_memo) >= _MEMO_SIZE:
        _memo.clear()
    _memo[plan] = flt
    return flt


def install(flt: Filter) -> None:
    """Load ``flt`` into the calling thread (all threads with SECCOMP_FILTER_FLAG_TSYNC). Irreversible."""
    ctypes = _libc.host_module("ctypes")

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(flt.bpf, len(flt.bpf))
    prog = SockFprog(flt.instructions, ctypes.addressof(buf))
    try:
        if flt.flags:
            number = _SYS_SECCOMP.get(os.uname().machine)
            if number is None:
                raise FailedPrecondition(
                    f"{_profile.FIELD}.flags: seccomp(2) flags are not supported on this machine"
                )
            rc = _libc.syscall(number, _SECCOMP_SET_MODE_FILTER, flt.flags, ctypes.addressof(prog))
            if rc > 0:  # TSYNC: the id of a thread that could not be synchronized
                raise Internal(f"seccomp: thread {rc} could not take the filter (SECCOMP_FILTER_FLAG_TSYNC)")
        else:
            _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog))
    except OSError as exc:
        if exc.errno == errno.EACCES:
            raise PermissionDenied(
                "seccomp: loading a filter needs no_new_privs or CAP_SYS_ADMIN in the effective set"
            ) from exc
        if exc.errno == errno.EINVAL:
            raise FailedPrecondition(
                f"seccomp: the kernel refused the filter or its flags: {exc.strerror}"
            ) from exc
        raise from_oserror(exc, "seccomp(SECCOMP_SET_MODE_FILTER)") from exc


def load(profile: Mapping[str, object], *, cache_dir: str | None = None) -> None:
    """Build the filter for ``profile`` and load it into the calling process (irreversible)."""
    install(build(profile, cache_dir=cache_dir))


# --- the compiled-filter cache ------------------------------------------------------------------


def _key(plan: _profile.Plan) -> str:
    # The builtin _sha256, not hashlib: hashlib loads OpenSSL (~4 ms, and ~4 MB in every monitor that forks).
    try:
        from _sha256 import sha256
    except ImportError:  # pragma: no cover - a build without the builtin
        sha256 = _libc.host_module("hashlib").sha256
    # The plan holds only ints and strings in a fixed order, so its repr is canonical.
    return sha256(repr((_CACHE_MAGIC, os.uname().machine, plan)).encode()).hexdigest()


def _trusted_dir(path: str) -> bool:
    # The cache decides what every container may call: use it only if nobody but us can write it.
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _cache_read(cache_dir: str, key: str) -> Filter | None:
    if not _trusted_dir(cache_dir):
        return None
    try:
        fd = os.open(os.path.join(cache_dir, key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022 or st.st_size > 8 * _BPF_MAXINSNS + 12:
            return None
        data = os.read(fd, st.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    head, bpf = data[:12], data[12:]
    if head[:8] != _CACHE_MAGIC or not bpf or len(bpf) % 8 or len(bpf) > 8 * _BPF_MAXINSNS:
        return None
    return Filter(bpf, int.from_bytes(head[8:], "little"))


def _cache_write(cache_dir: str, key: str, flt: Filter) -> None:
    # Best effort: a cache that cannot be written only costs the next container the compile time.
    tmp = os.path.join(cache_dir, f".{key}.{os.getpid()}.tmp")
    try:
        os.makedirs(cache_dir, 0o700, exist_ok=True)
        if not _trusted_dir(cache_dir):
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, _CACHE_MAGIC + flt.flags.to_bytes(4, "little") + flt.bpf)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(cache_dir, key))
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _libseccomp() -> None:
    """Deprecated: process/init.py's preload calls this; use :func:`kobako.runtime.security.preload`."""
    _libc.host_module("kobako.runtime.security._libseccomp").binding()

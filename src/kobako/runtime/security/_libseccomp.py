"""libseccomp through ctypes: turn a checked plan (:mod:`._seccomp_profile`) into classic BPF.

kobako uses libseccomp only as a compiler: it resolves syscall names per architecture, handles
multiplexed calls (socketcall, ipc on x86) and lays out the filter; the result is exported as raw
BPF and loaded by :func:`kobako.runtime.security.seccomp.install` with one syscall. The library is
dlopen'ed on first use only.
"""

from __future__ import annotations

import errno
import os

from kobako.errors import FailedPrecondition, Internal, InvalidArgument
from kobako.runtime.security._libc import check_host_root, host_module
from kobako.runtime.security._seccomp_profile import ARCHITECTURES, FIELD

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes

    from kobako.runtime.security._seccomp_profile import Plan, Rule

_SONAME = "libseccomp.so.2"
_NR_SCMP_ERROR = -1  # seccomp_syscall_resolve_name: not a syscall libseccomp knows
# enum scmp_filter_attr
_ATTR_CTL_OPTIMIZE = 8
# Past this many syscalls, ask for a binary-tree filter: a syscall then walks O(log n) BPF
# instructions instead of O(n). (libseccomp <= 2.5.4 misbehaves with the tree and no rules.)
_OPTIMIZE_ABOVE = 32
_BPF_MAXINSNS = 4096


class _Binding:
    """libseccomp.so.2 with the functions kobako uses typed, and a cache of syscall numbers."""

    def __init__(self) -> None:
        ctypes = host_module("ctypes")
        check_host_root(_SONAME)
        try:
            lib = ctypes.CDLL(_SONAME)
        except OSError as exc:
            raise FailedPrecondition(f"seccomp: {_SONAME} is not installed (Debian: libseccomp2)") from exc
        ptr, u32, cint = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
        signatures: dict[str, tuple[list[object], object]] = {
            "seccomp_init": ([u32], ptr),
            "seccomp_release": ([ptr], None),
            "seccomp_attr_set": ([ptr, cint, u32], cint),
            "seccomp_arch_add": ([ptr, u32], cint),
            "seccomp_syscall_resolve_name": ([ctypes.c_char_p], cint),
            "seccomp_rule_add_array": ([ptr, u32, cint, ctypes.c_uint, ptr], cint),
            "seccomp_export_bpf": ([ptr, cint], cint),
        }
        for fname, (argtypes, restype) in signatures.items():
            func = getattr(lib, fname)
            func.argtypes = argtypes
            func.restype = restype

        class ArgCmp(ctypes.Structure):
            # struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; scmp_datum_t datum_a, datum_b; }
            _fields_ = [
                ("arg", ctypes.c_uint),
                ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64),
            ]

        self.lib: ctypes.CDLL = lib
        self.arg_cmp: type[ctypes.Structure] = ArgCmp
        self.numbers: dict[str, int] = {}


_binding: _Binding | None = None


def binding() -> _Binding:
    global _binding
    if _binding is None:
        _binding = _Binding()
    return _binding


def generate(plan: Plan) -> bytes:
    """The classic BPF program (``struct sock_filter`` array) libseccomp builds for ``plan``."""
    default, arches, _flags, rules = plan
    b = binding()
    lib = b.lib
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise FailedPrecondition(
            f"{FIELD}: libseccomp refused default action {default:#x} (kernel or libseccomp too old?)"
        )
    try:
        for arch in arches:
            rc = lib.seccomp_arch_add(ctx, arch)
            if rc < 0 and rc != -errno.EEXIST:  # the native architecture is always there already
                name = next(n for n, token in ARCHITECTURES.items() if token == arch)
                raise FailedPrecondition(
                    f"{FIELD}.architectures: libseccomp cannot add {name}: {_strerror(rc)}"
                )
        if sum(len(rule[1]) for rule in rules) > _OPTIMIZE_ABOVE:
            lib.seccomp_attr_set(ctx, _ATTR_CTL_OPTIMIZE, 2)  # best effort: only speed is at stake
        _add_rules(b, ctx, rules)
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _add_rules(b: _Binding, ctx: int, rules: tuple[Rule, ...]) -> None:
    resolve = b.lib.seccomp_syscall_resolve_name
    add = b.lib.seccomp_rule_add_array
    numbers = b.numbers
    arg_cmp = b.arg_cmp
    for where, names, action, groups in rules:
        arrays = [((arg_cmp * len(g))(*(arg_cmp(*c) for c in g)) if g else None, len(g)) for g in groups]
        for name in names:
            nr = numbers.get(name)
            if nr is None:
                nr = numbers[name] = resolve(name.encode())
            if nr == _NR_SCMP_ERROR:
                continue  # unknown to libseccomp (a newer kernel's, or a typo): skipped, as runc does
            for array, count in arrays:
                rc = add(ctx, action, nr, count, array)
                if rc < 0:
                    raise InvalidArgument(
                        f"{where}: libseccomp refused the rule for {name!r}: {_strerror(rc)}"
                    )


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("kobako-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise Internal(f"{FIELD}: libseccomp could not generate the filter: {_strerror(rc)}")
        size = os.lseek(fd, 0, os.SEEK_CUR)
        bpf = os.pread(fd, size, 0)
    finally:
        os.close(fd)
    if len(bpf) != size or size % 8 or not size:
        raise Internal(f"{FIELD}: libseccomp produced a malformed filter ({size} bytes)")
    if size // 8 > _BPF_MAXINSNS:
        raise InvalidArgument(
            f"{FIELD}: the filter needs {size // 8} BPF instructions, the kernel takes {_BPF_MAXINSNS}"
        )
    return bpf


def _strerror(rc: int) -> str:
    return os.strerror(-rc) if rc < 0 else str(rc)

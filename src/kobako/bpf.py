"""The bpf(2) syscall for kobako's hand-assembled programs (cgroup v2 devices, the network fast path):
no libbpf, no compiler, no ``ctypes`` package — the call goes through ``kobako.libc``.

``call(cmd, attr)`` passes a ``union bpf_attr`` (packed by the caller, padded here) and returns the result
and the attr as the kernel left it; failures are OSError with errno. ``load`` loads a program and, when
the verifier refuses it, loads it again with the log on to say why.
"""

from __future__ import annotations

import os
import struct

# Commands (include/uapi/linux/bpf.h).
MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, MAP_GET_NEXT_KEY = 0, 1, 2, 3, 4
PROG_LOAD, PROG_ATTACH, PROG_DETACH = 5, 8, 9
MAP_GET_NEXT_ID, PROG_GET_FD_BY_ID, MAP_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, PROG_QUERY = 12, 13, 14, 15, 16

_SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_ATTR_SIZE = 128  # bytes of union bpf_attr passed (the kernel checks that what it does not know is zero)


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One instruction: opcode, registers, offset, immediate."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def call(cmd: int, attr: bytes) -> tuple[int, bytes]:
    """bpf(cmd, attr): (result, the attr as the kernel left it: some commands answer in it)."""
    from kobako import libc

    nr = _SYSCALL_NR.get(os.uname().machine)
    if nr is None:
        raise OSError(38, f"no bpf syscall number for {os.uname().machine}")  # ENOSYS
    buf = libc.byte_buffer(attr, _ATTR_SIZE)
    result = libc.call_long("syscall", libc.ulong(nr), cmd, buf, _ATTR_SIZE)
    return result, bytes(buf)


def address(buf: object) -> int:
    """A buffer's address for an attr (the caller keeps the buffer alive until the call)."""
    from kobako import libc

    return int(libc.address(buf))  # type: ignore[arg-type]


def load(prog_type: int, insns: bytes, name: bytes, license_: bytes = b"Dual MIT/GPL") -> int:
    """Load a program; its fd. A refusal raises OSError with the verifier's log in a note."""
    from kobako import libc

    code, lic = libc.byte_buffer(insns), libc.byte_buffer(license_ + b"\0")

    def attr(log: object | None) -> bytes:
        return struct.pack(
            "<IIQQIIQII16s", prog_type, len(insns) // 8, address(code), address(lic),
            1 if log is not None else 0, len(bytes(log)) if log is not None else 0,
            address(log) if log is not None else 0, 0, 0, name,
        )  # fmt: skip

    try:
        return call(PROG_LOAD, attr(None))[0]
    except OSError as exc:
        log = libc.byte_buffer(b"", 65536)
        try:
            os.close(call(PROG_LOAD, attr(log))[0])
        except OSError:
            pass
        verifier = bytes(log).split(b"\0", 1)[0].decode(errors="replace").strip()
        if verifier:
            exc.add_note("verifier: " + verifier[-2000:])
        raise

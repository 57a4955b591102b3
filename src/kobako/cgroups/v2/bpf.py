"""Device control on cgroup v2: a small hand-assembled BPF_PROG_TYPE_CGROUP_DEVICE program, loaded and
attached with the bpf(2) syscall (``kobako.bpf``: no libbpf, no compiler).

The program answers "may this task open/mknod this device?" from the reduced rule list (devices.py) with
the same checks the v1 kernel controller makes, so one OCI list behaves the same on both drivers:
  * default deny: allow iff some exception matches type/major/minor and grants every requested access bit;
  * default allow: deny iff some exception matches type/major/minor and shares any requested access bit.
It is attached with BPF_F_ALLOW_MULTI so nested cgroups can add their own (all programs must allow). An update
attaches the new program first and then detaches the old ones: for a moment both apply, never neither.
"""

from __future__ import annotations

import os
import struct

from kobako import bpf
from kobako.bpf import insn as _insn
from kobako.cgroups.devices import ALL_ACCESS, DeviceRule
from kobako.errors import from_oserror

# Program/attach types and flags (include/uapi/linux/bpf.h)
_PROG_TYPE_CGROUP_DEVICE = 15
_CGROUP_DEVICE = 6  # attach type
_F_ALLOW_MULTI = 2
_DEV_BLOCK, _DEV_CHAR = 1, 2  # BPF_DEVCG_DEV_*

# Opcodes used below (class | op | source).
_LDX_W = 0x61  # dst = *(u32 *)(src + off)
_AND32_K = 0x54
_RSH32_K = 0x74
_MOV32_X = 0xBC
_MOV64_K = 0xB7
_JNE_K = 0x55
_JEQ_K = 0x15
_JSET_K = 0x45
_EXIT = 0x95
_R0, _R1, _R2, _R3, _R4, _R5 = range(6)


def assemble(default_allow: bool, rules: list[DeviceRule]) -> bytes:
    """Compile the reduced rule list into BPF instructions.

    The context is struct bpf_cgroup_dev_ctx {u32 access_type (access << 16 | type); u32 major; u32 minor}.
    """
    prog = [
        _insn(_LDX_W, _R2, _R1, 0),  # r2 = device type
        _insn(_AND32_K, _R2, imm=0xFFFF),
        _insn(_LDX_W, _R3, _R1, 0),  # r3 = requested access bits
        _insn(_RSH32_K, _R3, imm=16),
        _insn(_LDX_W, _R4, _R1, 4),  # r4 = major
        _insn(_LDX_W, _R5, _R1, 8),  # r5 = minor
    ]
    verdict = 0 if default_allow else 1  # what a matching exception means
    for kind, major, minor, access in rules:
        # Each check jumps past the rest of this rule's block on mismatch (to the next rule or the default).
        checks: list[tuple[int, int, int]] = [(_JNE_K, _R2, _DEV_BLOCK if kind == "b" else _DEV_CHAR)]
        prefix: list[bytes] = []
        if access != ALL_ACCESS:
            if default_allow:  # a deny exception hits when any requested bit is in it
                prefix = [_insn(_MOV32_X, _R1, _R3), _insn(_AND32_K, _R1, imm=access)]
                checks.append((_JEQ_K, _R1, 0))
            else:  # an allow exception covers the request only if no requested bit lies outside it
                checks.append((_JSET_K, _R3, ~access & ALL_ACCESS))
        if major >= 0:
            checks.append((_JNE_K, _R4, major))
        if minor >= 0:
            checks.append((_JNE_K, _R5, minor))
        # The access prefix computes r1 for its JEQ; it leads the block so every check skips the same tail.
        block_len = len(prefix) + len(checks) + 2
        prog += prefix
        done = len(prefix)
        for code, reg, imm in checks:
            done += 1
            prog.append(_insn(code, reg, off=block_len - done, imm=imm))
        prog += [_insn(_MOV64_K, _R0, imm=verdict), _insn(_EXIT)]
    prog += [_insn(_MOV64_K, _R0, imm=1 if default_allow else 0), _insn(_EXIT)]
    return b"".join(prog)


def set_device_rules(cgroup_dir: str, default_allow: bool, rules: list[DeviceRule]) -> None:
    """Make ``rules`` the device policy of the cgroup at ``cgroup_dir``.

    Device programs attached directly to this cgroup (a previous apply's) are replaced; programs on ancestor
    or nested cgroups are not touched.
    """
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise from_oserror(exc, f"opening cgroup {cgroup_dir}") from exc
    try:
        old = query(dir_fd)
        if not old and default_allow and not rules:
            return  # nothing to restrict and nothing to replace
        try:
            prog_fd = bpf.load(_PROG_TYPE_CGROUP_DEVICE, assemble(default_allow, rules), b"kobako_devices",
                               b"Apache-2.0")  # fmt: skip
        except OSError as exc:
            raise _error(exc, "loading the cgroup device program") from exc
        try:
            attr = struct.pack("<IIII", dir_fd, prog_fd, _CGROUP_DEVICE, _F_ALLOW_MULTI)
            _bpf(bpf.PROG_ATTACH, attr, f"attaching the device program to {cgroup_dir}")
        finally:
            os.close(prog_fd)  # the cgroup holds its own reference
        for prog_id in old:
            old_fd = _bpf(
                bpf.PROG_GET_FD_BY_ID, struct.pack("<I", prog_id), "opening the old device program"
            )[0]
            try:
                attr = struct.pack("<III", dir_fd, old_fd, _CGROUP_DEVICE)
                _bpf(bpf.PROG_DETACH, attr, f"detaching the old device program from {cgroup_dir}")
            finally:
                os.close(old_fd)
    finally:
        os.close(dir_fd)


def query(dir_fd: int) -> list[int]:
    """IDs of the device programs attached directly to the cgroup open at ``dir_fd``."""
    from kobako import libc

    ids = libc.byte_buffer(b"", 64 * 4)
    attr = struct.pack("<IIIIQI", dir_fd, _CGROUP_DEVICE, 0, 0, bpf.address(ids), 64)
    _, answer = _bpf(bpf.PROG_QUERY, attr, "listing the cgroup's device programs")
    count = min(struct.unpack_from("<I", answer, 24)[0], 64)  # prog_cnt
    return list(struct.unpack_from(f"<{count}I", bytes(ids)))


def _bpf(cmd: int, attr: bytes, what: str) -> tuple[int, bytes]:
    try:
        return bpf.call(cmd, attr)
    except OSError as exc:
        raise _error(exc, what) from exc


def _error(exc: OSError, what: str) -> Exception:
    """The kobako error naming ``what``, with the verifier's log if the kernel gave one."""
    err = from_oserror(exc, what)
    for note in getattr(exc, "__notes__", ()):
        err.add_note(note)
    return err

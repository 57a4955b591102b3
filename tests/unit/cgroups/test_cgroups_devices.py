"""Device rules: the OCI list reduced with v1 kernel semantics, and the v2 eBPF program that must agree with it.

The program is run here by a tiny interpreter of the handful of BPF opcodes the assembler emits, and compared
with a direct model of the v1 kernel's check for random rule lists and device requests.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from kobako.cgroups.devices import ACC_MKNOD, ACC_READ, ACC_WRITE, reduce_rules, rule_line
from kobako.cgroups.v2.bpf import assemble

RWM = ACC_READ | ACC_WRITE | ACC_MKNOD


def test_reduce_typical_oci_list() -> None:
    default_allow, rules = reduce_rules(
        [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
            {"allow": True, "type": "b", "major": 8, "access": "r"},
        ]
    )
    assert not default_allow
    assert [rule_line(r) for r in rules] == ["c 1:3 rwm", "b 8:* r"]


def test_reduce_agreeing_entry_removes_bits_and_wildcard_resets() -> None:
    _, rules = reduce_rules(
        [
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
        ]
    )
    assert rules == [("c", 1, 3, ACC_READ | ACC_MKNOD)]
    assert reduce_rules([{"allow": True, "type": "c", "major": 5}, {"allow": True}]) == (True, [])
    assert reduce_rules([]) == (False, [])


def _run(prog: bytes, kind: int, access: int, major: int, minor: int) -> int:
    """Interpret the assembled program for one bpf_cgroup_dev_ctx."""
    ctx = struct.pack("<III", (access << 16) | kind, major, minor)
    insns = [struct.unpack_from("<BBhi", prog, i) for i in range(0, len(prog), 8)]
    reg = [0] * 11
    pc = 0
    while True:
        code, regs, off, imm = insns[pc]
        dst, src = regs & 0xF, regs >> 4
        pc += 1
        if code == 0x61:
            reg[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:
            reg[dst] = (reg[dst] & imm) & 0xFFFFFFFF
        elif code == 0x74:
            reg[dst] = (reg[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xBC:
            reg[dst] = reg[src] & 0xFFFFFFFF
        elif code == 0xB7:
            reg[dst] = imm
        elif code in (0x55, 0x15, 0x45):
            taken = {0x55: reg[dst] != imm, 0x15: reg[dst] == imm, 0x45: bool(reg[dst] & imm)}[code]
            pc += off if taken else 0
        elif code == 0x95:
            return reg[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def _kernel_v1(default_allow: bool, rules: list, kind: str, major: int, minor: int, access: int) -> bool:
    def matches(r: tuple) -> bool:
        return r[0] == kind and r[1] in (-1, major) and r[2] in (-1, minor)

    if default_allow:
        return not any(matches(r) and r[3] & access for r in rules)
    return any(matches(r) and not access & ~r[3] for r in rules)


def test_program_on_a_typical_list() -> None:
    default_allow, rules = reduce_rules(
        [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            {"allow": True, "type": "c", "major": 136, "access": "rwm"},
        ]
    )
    prog = assemble(default_allow, rules)
    assert _run(prog, 2, ACC_READ | ACC_WRITE, 1, 3) == 1  # /dev/null rw
    assert _run(prog, 2, ACC_MKNOD, 1, 3) == 0  # mknod not granted
    assert _run(prog, 2, ACC_READ, 136, 7) == 1  # any pty
    assert _run(prog, 1, ACC_READ, 1, 3) == 0  # same numbers, block device
    assert _run(prog, 2, ACC_READ, 1, 5) == 0


_entry = st.fixed_dictionaries(
    {"allow": st.booleans()},
    optional={
        "type": st.sampled_from(["a", "b", "c"]),
        "major": st.sampled_from([-1, 1, 8]),
        "minor": st.sampled_from([-1, 3, 5]),
        "access": st.sampled_from(["r", "w", "m", "rw", "rwm", "wm"]),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(_entry, max_size=6),
    kind=st.sampled_from(["b", "c"]),
    major=st.sampled_from([1, 8, 9]),
    minor=st.sampled_from([3, 5, 6]),
    access=st.integers(1, RWM),
)
def test_program_agrees_with_the_v1_kernel_check(entries, kind, major, minor, access) -> None:
    default_allow, rules = reduce_rules(entries)
    expected = _kernel_v1(default_allow, rules, kind, major, minor, access)
    got = _run(assemble(default_allow, rules), 1 if kind == "b" else 2, access, major, minor)
    assert got == int(expected)

"""The fast path's program and the one rule about trusting a map by its name."""

from __future__ import annotations

import struct
from pathlib import Path

from kobako.engine.network import fastpath


def test_map_names_are_trusted_only_where_unprivileged_bpf_is_off(tmp_path: Path) -> None:
    sysctl = tmp_path / "unprivileged_bpf_disabled"
    for value, trusted in ((b"0\n", False), (b"1\n", True), (b"2\n", True)):
        sysctl.write_bytes(value)
        assert fastpath._names_trusted(str(sysctl)) is trusted
    assert fastpath._names_trusted(str(tmp_path / "missing")) is False


def test_the_program_jumps_land_inside_it_and_it_ends_in_exit() -> None:
    code = fastpath.program(7, "10.88.0.0/16", "10.88.0.1")
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    assert insns[-1][0] == 0x95  # exit
    for i, (op, _regs, off, _imm) in enumerate(insns):
        if op & 0x07 in (0x05, 0x06) and op not in (0x85, 0x95):  # jumps (JMP, JMP32), not call/exit
            assert 0 <= i + 1 + off < len(insns), (i, off)
    # the map's fd sits in the ld_imm64 (BPF_PSEUDO_MAP_FD in the source register)
    assert any(op == 0x18 and regs >> 4 == 1 and imm == 7 for op, regs, _off, imm in insns)

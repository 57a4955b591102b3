"""The fast path's program, and which map it trusts."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from kobako.engine.network import fastpath


@pytest.mark.root
def test_a_map_is_used_only_if_this_boots_record_names_it(tmp_path: Path) -> None:
    """Not by its name alone: with unprivileged BPF allowed anyone may name a map like a network's."""
    records, nid = str(tmp_path / "fastpath"), "ab" * 32
    squatter = fastpath._create_map(nid)  # the right name, but nobody recorded it
    try:
        assert fastpath._open_map(records, nid) is None
        fd = fastpath._ensure_map(records, nid)
        try:
            assert fd != squatter
            assert (tmp_path / "fastpath").stat().st_mode & 0o777 == 0o700
            record = tmp_path / "fastpath" / nid
            assert record.stat().st_mode & 0o777 == 0o600
            boot, map_id = record.read_text().split()
            assert boot == fastpath._boot_id() and int(map_id) == fastpath.map_id(fd)
            again = fastpath._ensure_map(records, nid)  # the recorded map, not a second one
            assert fastpath.map_id(again) == fastpath.map_id(fd)
            os.close(again)
            fastpath._update(fd, "10.1.2.3", 7)
            assert fastpath.entries(records, nid) == {"10.1.2.3": 7}
            fastpath.forget(records, nid, "10.1.2.3")
            assert fastpath.entries(records, nid) == {}
            squatter_id = fastpath.map_id(squatter)
            for text in (f"another-boot {map_id}\n", f"{boot} {squatter_id + 10**6}\n", "garbage"):
                record.write_text(text)
                assert fastpath._open_map(records, nid) is None, text
            other = fastpath._create_map("cd" * 32)  # alive and recorded, but another network's
            try:
                other_id = fastpath.map_id(other)
                record.write_text(f"{boot} {other_id}\n")
                assert fastpath._open_map(records, nid) is None
            finally:
                os.close(other)
            fastpath.drop(records, nid)
            assert not record.exists()
            fastpath.drop(records, nid)  # idempotent
        finally:
            os.close(fd)
    finally:
        os.close(squatter)


def test_the_program_jumps_land_inside_it_and_it_ends_in_exit() -> None:
    code = fastpath.program(7, "10.88.0.0/16", "10.88.0.1")
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    assert insns[-1][0] == 0x95  # exit
    for i, (op, _regs, off, _imm) in enumerate(insns):
        if op & 0x07 in (0x05, 0x06) and op not in (0x85, 0x95):  # jumps (JMP, JMP32), not call/exit
            assert 0 <= i + 1 + off < len(insns), (i, off)
    # the map's fd sits in the ld_imm64 (BPF_PSEUDO_MAP_FD in the source register)
    assert any(op == 0x18 and regs >> 4 == 1 and imm == 7 for op, regs, _off, imm in insns)

"""seccomp.build's on-disk cache of compiled filters: hits, misses, and what it refuses to trust."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.runtime.security import _libseccomp, seccomp

PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
FAKE_BPF = b"\x06\x00\x00\x00\x00\x00\xff\x7f"  # one instruction: return ALLOW


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Count compilations, with a stand-in compiler so these tests need no libseccomp."""
    seen: list[object] = []

    def generate(plan: object) -> bytes:
        seen.append(plan)
        return FAKE_BPF

    monkeypatch.setattr(_libseccomp, "generate", generate)
    monkeypatch.setattr(seccomp, "_memo", {})
    return seen


def cache_files(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if not p.name.startswith(".")]


def test_compiled_once_then_read_from_disk(tmp_path: Path, compiles: list[object]) -> None:
    cache = tmp_path / "cache"
    first = seccomp.build(PROFILE, cache_dir=str(cache))
    assert len(compiles) == 1
    assert len(cache_files(cache)) == 1
    assert cache.stat().st_mode & 0o777 == 0o700
    seccomp._memo.clear()  # a new process
    again = seccomp.build(PROFILE, cache_dir=str(cache))
    assert len(compiles) == 1
    assert again.bpf == first.bpf == FAKE_BPF


def test_memo_answers_without_disk(compiles: list[object]) -> None:
    assert seccomp.build(PROFILE) is seccomp.build(PROFILE)
    assert len(compiles) == 1


def test_memo_hit_still_fills_a_new_cache_dir(tmp_path: Path, compiles: list[object]) -> None:
    seccomp.build(PROFILE)
    seccomp.build(PROFILE, cache_dir=str(tmp_path / "cache"))
    assert len(compiles) == 1
    assert len(cache_files(tmp_path / "cache")) == 1


def test_different_profiles_get_different_entries(tmp_path: Path, compiles: list[object]) -> None:
    other = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    seccomp.build(PROFILE, cache_dir=str(tmp_path))
    seccomp.build(other, cache_dir=str(tmp_path))
    assert len(compiles) == 2
    assert len(cache_files(tmp_path)) == 2


def test_a_writable_by_others_cache_is_ignored(tmp_path: Path, compiles: list[object]) -> None:
    cache = tmp_path / "cache"
    seccomp.build(PROFILE, cache_dir=str(cache))
    os.chmod(cache, 0o777)
    seccomp._memo.clear()
    seccomp.build(PROFILE, cache_dir=str(cache))
    assert len(compiles) == 2


def test_a_tampered_entry_is_ignored(tmp_path: Path, compiles: list[object]) -> None:
    seccomp.build(PROFILE, cache_dir=str(tmp_path))
    (entry,) = cache_files(tmp_path)
    entry.write_bytes(b"garbage!" + b"\0" * 9)
    seccomp._memo.clear()
    assert seccomp.build(PROFILE, cache_dir=str(tmp_path)).bpf == FAKE_BPF
    assert len(compiles) == 2


def test_a_symlinked_entry_is_not_followed(tmp_path: Path, compiles: list[object]) -> None:
    seccomp.build(PROFILE, cache_dir=str(tmp_path))
    (entry,) = cache_files(tmp_path)
    target = tmp_path / ".elsewhere"
    entry.rename(target)
    entry.symlink_to(target)
    seccomp._memo.clear()
    seccomp.build(PROFILE, cache_dir=str(tmp_path))
    assert len(compiles) == 2


def test_an_unwritable_cache_only_costs_time(tmp_path: Path, compiles: list[object]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert seccomp.build(PROFILE, cache_dir=str(blocker / "cache")).bpf == FAKE_BPF

"""Layer creation from an overlay upper dir and from two plain trees; round trips through apply_layer."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from kobako.archive.diff import write_dir_diff, write_upper_diff
from kobako.archive.tar import apply_layer


def names(blob: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return [m.name for m in tar.getmembers()]


def tree(root: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        body = p.read_bytes() if stat.S_ISREG(st.st_mode) else os.readlink(p) if p.is_symlink() else None
        out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), body)
    return out


def base_tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/keep").write_text("keep")
    (root / "etc/change").write_text("before")
    (root / "etc/drop").write_text("drop")
    (root / "var/lib/old").mkdir(parents=True)
    (root / "var/lib/old/file").write_text("old")
    os.symlink("etc/keep", root / "link")


def test_dir_diff_round_trip(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    base_tree(lower)
    shutil.copytree(lower, upper, symlinks=True)
    (upper / "etc/change").write_text("after!")
    (upper / "etc/drop").unlink()
    shutil.rmtree(upper / "var/lib/old")
    (upper / "etc/new").write_text("new")
    os.chmod(upper / "etc/keep", 0o600)
    (upper / "link").unlink()
    os.symlink("elsewhere", upper / "link")
    os.link(upper / "etc/new", upper / "etc/new-hard")
    out = io.BytesIO()
    result = write_dir_diff(lower, upper, out, compression="none")
    blob = out.getvalue()
    assert result.diff_id == result.digest and result.size == len(blob)
    listed = names(blob)
    assert "etc/.wh.drop" in listed and "var/lib/.wh.old" in listed
    assert "var/lib/old/file" not in listed and "etc/keep" in listed
    target = tmp_path / "target"
    shutil.copytree(lower, target, symlinks=True)
    applied = apply_layer(io.BytesIO(blob), target)
    assert applied.diff_id == result.diff_id
    assert tree(target) == tree(upper)
    assert (target / "etc/new-hard").stat().st_ino == (target / "etc/new").stat().st_ino


def test_dir_diff_of_nothing_is_the_whole_tree_and_is_deterministic(tmp_path: Path) -> None:
    base_tree(tmp_path / "t")
    a, b = io.BytesIO(), io.BytesIO()
    ra = write_dir_diff(None, tmp_path / "t", a)
    rb = write_dir_diff(None, tmp_path / "t", b)
    assert ra == rb and a.getvalue() == b.getvalue()
    assert ra.compression == "gzip" and ra.digest.encoded == hashlib.sha256(a.getvalue()).hexdigest()
    assert ra.diff_id.encoded == hashlib.sha256(gzip.decompress(a.getvalue())).hexdigest()
    assert names(a.getvalue()) == ["etc", "etc/change", "etc/drop", "etc/keep", "link", "var", "var/lib",
                                   "var/lib/old", "var/lib/old/file"]  # fmt: skip


def test_unchanged_trees_give_an_empty_layer(tmp_path: Path) -> None:
    base_tree(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True, copy_function=shutil.copy2)
    for p in [tmp_path / "b", *sorted((tmp_path / "b").rglob("*"), reverse=True)]:  # copy dir times too
        src = tmp_path / "a" / p.relative_to(tmp_path / "b")
        st = src.lstat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    out = io.BytesIO()
    write_dir_diff(tmp_path / "a", tmp_path / "b", out, compression="none")
    assert names(out.getvalue()) == []


@pytest.mark.root
def test_upper_diff_turns_overlay_markers_into_oci_whiteouts(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "dir").mkdir(parents=True)
    (upper / "opaque").mkdir()
    (upper / "opaque/fresh").write_text("fresh")
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    os.mknod(upper / "dir/deleted", stat.S_IFCHR | 0o600, 0)
    (upper / "dir/added").write_text("added")
    out = io.BytesIO()
    result = write_upper_diff(upper, out, compression="none")
    blob = out.getvalue()
    assert names(blob) == [
        "dir",
        "dir/.wh.deleted",
        "dir/added",
        "opaque",
        "opaque/.wh..wh..opq",
        "opaque/fresh",
    ]
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        assert all("trusted.overlay.opaque" not in str(m.pax_headers) for m in tar.getmembers())
    again = tmp_path / "again"  # applying in overlay mode reproduces the upper dir
    again.mkdir()
    assert apply_layer(io.BytesIO(blob), again, overlay=True).diff_id == result.diff_id
    assert stat.S_ISCHR((again / "dir/deleted").lstat().st_mode)
    assert os.getxattr(again / "opaque", "trusted.overlay.opaque") == b"y"


@pytest.mark.root
def test_upper_diff_refuses_redirects(tmp_path: Path) -> None:
    from kobako.errors import InvalidArgument

    (tmp_path / "u/d").mkdir(parents=True)
    os.setxattr(tmp_path / "u/d", "trusted.overlay.redirect", b"/elsewhere")
    with pytest.raises(InvalidArgument, match="redirect"):
        write_upper_diff(tmp_path / "u", io.BytesIO())


def test_zstd_output(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    base_tree(tmp_path / "t")
    out = io.BytesIO()
    result = write_dir_diff(None, tmp_path / "t", out, compression="zstd")
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(out.getvalue())).read()
    assert result.diff_id.encoded == hashlib.sha256(raw).hexdigest()

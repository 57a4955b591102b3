"""apply_layer: entry kinds, metadata, compression, replacement rules and whiteouts in both modes."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import zlib
from pathlib import Path

import pytest

from kobako.archive.tar import apply_layer
from kobako.errors import InvalidArgument

IS_ROOT = os.geteuid() == 0


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_500_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def layer(*members: tuple) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def apply(data: bytes, root: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    root.mkdir(exist_ok=True)
    return apply_layer(io.BytesIO(data), root, **kwargs)  # type: ignore[arg-type]


def test_kinds_and_metadata(tmp_path: Path) -> None:
    data = layer(
        member("etc", tarfile.DIRTYPE, mode=0o750, mtime=1_000_000_000),
        member("etc/conf", data=b"conf", mode=0o600, mtime=1_100_000_000),
        member("etc/readonly", data=b"ro", mode=0o444),
        member("bin/tool", data=b"#!", mode=0o4755),
        member("link", tarfile.SYMTYPE, linkname="etc/conf", mtime=1_200_000_000),
        member("hard", tarfile.LNKTYPE, linkname="etc/conf"),
        member("pipe", tarfile.FIFOTYPE, mode=0o620),
        member("x", data=b"x", pax_headers={"SCHILY.xattr.user.kobako": "yes"}),
    )
    result = apply(data, tmp_path / "r")
    r = tmp_path / "r"
    assert result.entries == 8 and result.compression == "none"
    assert result.diff_id.encoded == hashlib.sha256(data).hexdigest() and result.size == len(data)
    assert (r / "etc/conf").read_bytes() == b"conf"
    assert stat.S_IMODE((r / "etc").stat().st_mode) == 0o750
    assert (r / "etc").stat().st_mtime == 1_000_000_000  # directory times survive their children
    assert (r / "etc/conf").stat().st_mtime == 1_100_000_000
    assert stat.S_IMODE((r / "etc/conf").stat().st_mode) == 0o600
    assert stat.S_IMODE((r / "etc/readonly").stat().st_mode) == 0o444
    assert stat.S_IMODE((r / "bin/tool").stat().st_mode) == 0o4755
    assert stat.S_IMODE((r / "bin").stat().st_mode) == 0o755  # implicit parent
    assert os.readlink(r / "link") == "etc/conf" and (r / "link").lstat().st_mtime == 1_200_000_000
    assert (r / "hard").stat().st_ino == (r / "etc/conf").stat().st_ino
    assert stat.S_ISFIFO((r / "pipe").lstat().st_mode) and stat.S_IMODE((r / "pipe").lstat().st_mode) == 0o620
    assert os.getxattr(r / "x", "user.kobako") == b"yes"


@pytest.mark.root
def test_ownership_is_kept_as_root(tmp_path: Path) -> None:
    data = layer(
        member("d", tarfile.DIRTYPE, uid=7, gid=8),
        member("d/f", data=b"f", uid=1000, gid=1001, mode=0o2755),
        member("d/l", tarfile.SYMTYPE, linkname="f", uid=5, gid=6),
    )
    apply(data, tmp_path / "r")
    r = tmp_path / "r"
    assert ((r / "d").stat().st_uid, (r / "d").stat().st_gid) == (7, 8)
    st = (r / "d/f").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o2755)  # setgid survives chown
    assert ((r / "d/l").lstat().st_uid, (r / "d/l").lstat().st_gid) == (5, 6)


@pytest.mark.parametrize("compression", ["none", "gzip", "gzip-multi", "zstd"])
def test_compressions_and_diff_id(tmp_path: Path, compression: str) -> None:
    raw = layer(member("a", data=os.urandom(300_000)), member("b", data=b"b" * 100_000))
    if compression == "gzip":
        blob = gzip.compress(raw)
    elif compression == "gzip-multi":
        blob = gzip.compress(raw[:5000]) + gzip.compress(raw[5000:])
    elif compression == "zstd":
        zstandard = pytest.importorskip("zstandard")
        blob = zstandard.ZstdCompressor().compress(raw)
    else:
        blob = raw
    result = apply(blob, tmp_path / "r", expected_diff_id="sha256:" + hashlib.sha256(raw).hexdigest())
    assert result.compression == compression.split("-")[0] and result.size == len(raw)
    assert (tmp_path / "r/b").read_bytes() == b"b" * 100_000


def test_expected_diff_id_mismatch(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="diff ID mismatch"):
        apply(layer(member("a", data=b"a")), tmp_path / "r", expected_diff_id="sha256:" + "0" * 64)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"BZh91AY&SY", "bzip2"),
        (b"\xfd7zXZ\x00rest", "xz"),
        (gzip.compress(b"x" * 10000)[:-20], "truncated"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage!" * 10, "corrupt gzip"),
    ],
)
def test_bad_compression(tmp_path: Path, blob: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply(blob, tmp_path / "r")


def test_replacement_rules(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(
        layer(
            member("d/old", data=b"old"),
            member("f", data=b"file"),
            member("s", tarfile.SYMTYPE, linkname="f"),
        ),
        r,
    )
    apply(
        layer(member("d", data=b"now a file"), member("f", tarfile.DIRTYPE), member("s", data=b"now a file")),
        r,
    )
    assert (r / "d").read_bytes() == b"now a file" and (r / "f").is_dir() and not (r / "s").is_symlink()
    apply(layer(member("f/inner", data=b"kept"), member("f", tarfile.DIRTYPE, mode=0o700)), r)
    assert (r / "f/inner").read_bytes() == b"kept" and stat.S_IMODE((r / "f").stat().st_mode) == 0o700


def test_plain_mode_whiteouts(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(layer(member("a/x", data=b"x"), member("a/y", data=b"y"), member("b/deep/z", data=b"z"),
                member("c", data=b"c"), member("o/old", data=b"old"), member("o/sub/old", data=b"old")), r)  # fmt: skip
    apply(
        layer(
            member("a/.wh.x"),
            member("b/.wh.deep"),
            member(".wh.c"),
            member(".wh.missing"),
            member("new", data=b"new"),
            member(".wh.new"),  # same layer: a whiteout only hides lower layers
            member("o", tarfile.DIRTYPE),
            member("o/sub", tarfile.DIRTYPE),
            member("o/.wh..wh..opq"),
            member("o/fresh", data=b"fresh"),
            member("q/.wh..wh.plnk"),  # AUFS bookkeeping is ignored
        ),
        r,
    )
    assert sorted(p.name for p in (r / "a").iterdir()) == ["y"]
    assert list((r / "b").iterdir()) == [] and not (r / "c").exists()
    assert (r / "new").read_bytes() == b"new"
    assert sorted(str(p.relative_to(r)) for p in (r / "o").rglob("*")) == ["o/fresh", "o/sub"]


@pytest.mark.root
def test_overlay_mode_whiteouts_become_devices_and_xattrs(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    apply(layer(member("a/x", data=b"x"), member("a/keep", data=b"k"), member("o/old", data=b"old"),
                member("big", data=b"lower data", mode=0o640, uid=3)), lower)  # fmt: skip
    os.chmod(lower / "a", 0o711)
    apply(
        layer(
            member("a/.wh.x"),
            member("a/.wh.nothere"),
            member("o", tarfile.DIRTYPE),
            member("o/.wh..wh..opq"),
            member("hl", tarfile.LNKTYPE, linkname="big"),
            member("gone/.wh.deeper"),
        ),
        upper,
        overlay=True,
        lowers=[str(lower)],
    )
    wh = (upper / "a/x").lstat()
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert not os.path.lexists(upper / "a/nothere")  # nothing below to hide: no whiteout
    assert not os.path.lexists(upper / "a/keep")
    assert stat.S_IMODE((upper / "a").stat().st_mode) == 0o711  # parent copied from the lower dir
    assert os.getxattr(upper / "o", "trusted.overlay.opaque") == b"y"
    assert (upper / "hl").read_bytes() == b"lower data"  # copied up, then linked
    assert (upper / "hl").stat().st_ino == (upper / "big").stat().st_ino and (
        upper / "big"
    ).stat().st_uid == 3
    assert not (upper / "gone").exists()


@pytest.mark.root
def test_overlay_mode_recreated_directory_is_opaque(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    apply(
        layer(member(".wh.d"), member("d", tarfile.DIRTYPE), member("d/new", data=b"n")), upper, overlay=True
    )
    assert os.getxattr(upper / "d", "trusted.overlay.opaque") == b"y"


def test_large_files_stream(tmp_path: Path) -> None:
    big = os.urandom(5 << 20)
    apply(gzip.compress(layer(member("big", data=big)), compresslevel=1), tmp_path / "r")
    assert hashlib.sha256((tmp_path / "r/big").read_bytes()).digest() == hashlib.sha256(big).digest()


def test_trailing_zero_padding_after_gzip_is_tolerated(tmp_path: Path) -> None:
    raw = layer(member("a", data=b"a"))
    apply(gzip.compress(raw) + bytes(1024), tmp_path / "r")
    z = zlib.compressobj(wbits=31)
    apply(z.compress(raw) + z.flush(), tmp_path / "r2")


def test_many_directories_and_deep_paths(tmp_path: Path) -> None:
    members = []
    for i in range(1200):  # more directories than descriptors the applier keeps open
        members.append(member(f"d{i:04d}", tarfile.DIRTYPE, mode=0o705, mtime=1_000_000_000 + i))
        members.append(member(f"d{i:04d}/f", data=b"%d" % i))
    deep = "/".join(f"level{i}" for i in range(150))
    members.append(member(deep + "/leaf", data=b"leaf"))
    apply(layer(*members), tmp_path / "r")
    r = tmp_path / "r"
    for i in (0, 700, 1199):
        st = (r / f"d{i:04d}").stat()
        assert st.st_mtime == 1_000_000_000 + i and stat.S_IMODE(st.st_mode) == 0o705
        assert (r / f"d{i:04d}/f").read_bytes() == b"%d" % i
    assert (r / deep / "leaf").read_bytes() == b"leaf"

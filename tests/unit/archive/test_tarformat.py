"""The hand-written tar reader and header writer, checked against Python's tarfile."""

from __future__ import annotations

import io
import tarfile

import pytest

from kobako.archive import tarformat as tf
from kobako.errors import InvalidArgument


def read(data: bytes, chunk: int = 7000) -> list[tuple[tf.Entry, bytes]]:
    reader = tf.TarReader(iter([data[i : i + chunk] for i in range(0, len(data), chunk)]))
    return [(e, reader.read_all(1 << 30)) for e in reader]


def build(fmt: int, members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **attrs: object) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.size = kind, size
    for key, value in attrs.items():
        setattr(ti, key, value)
    return ti


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("chunk", [512, 1000, 1 << 20])
def test_reads_what_tarfile_writes(fmt: int, chunk: int) -> None:
    long_dir = "deep/" * 25 if fmt != tarfile.USTAR_FORMAT else "d/" * 40
    members = [
        (info("dir", tarfile.DIRTYPE, mode=0o755, mtime=1_600_000_000), b""),
        (info("dir/file", size=1500, mode=0o4755, uid=1000, gid=100, mtime=1_700_000_000), b"x" * 1500),
        (info(long_dir + "name.txt", size=3), b"abc"),
        (info("sym", tarfile.SYMTYPE, linkname="/target/of/link"), b""),
        (info("hard", tarfile.LNKTYPE, linkname="dir/file"), b""),
        (info("fifo", tarfile.FIFOTYPE), b""),
        (info("dev", tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
        (info("empty", size=0), b""),
    ]
    entries = read(build(fmt, members), chunk)
    assert [e.name.decode().rstrip("/") for e, _ in entries] == [m.name for m, _ in members]
    by_name = {e.name.decode().rstrip("/"): (e, d) for e, d in entries}
    e, data = by_name["dir/file"]
    assert (e.type, e.mode, e.uid, e.gid, e.size, e.mtime_ns, data) == (
        tf.REG, 0o4755, 1000, 100, 1500, 1_700_000_000 * 10**9, b"x" * 1500)  # fmt: skip
    assert by_name["dir"][0].type == tf.DIR
    assert by_name["sym"][0].linkname == b"/target/of/link" and by_name["sym"][0].type == tf.SYM
    assert by_name["hard"][0].type == tf.LNK and by_name["hard"][0].linkname == b"dir/file"
    assert (by_name["dev"][0].devmajor, by_name["dev"][0].devminor) == (1, 3)
    assert by_name["fifo"][0].type == tf.FIFO


def test_pax_fields_and_xattrs() -> None:
    ti = info("ünïcode/" + "n" * 150, size=2, uid=3_000_000_000, mtime=1_700_000_000.25)
    ti.pax_headers = {"SCHILY.xattr.user.k": "v", "SCHILY.xattr.security.capability": "\x01\x02"}
    [(e, data)] = read(build(tarfile.PAX_FORMAT, [(ti, b"hi")]))
    assert e.name == ("ünïcode/" + "n" * 150).encode()
    assert e.uid == 3_000_000_000 and e.mtime_ns == 1_700_000_000_250_000_000
    assert e.xattrs == {"user.k": b"v", "security.capability": b"\x01\x02"} and data == b"hi"


def test_gnu_base256_numbers_and_long_links() -> None:
    ti = info("l", tarfile.SYMTYPE, linkname="t" * 300, uid=2**40)
    [(e, _)] = read(build(tarfile.GNU_FORMAT, [(ti, b"")]))
    assert e.linkname == b"t" * 300 and e.uid == 2**40


@pytest.mark.parametrize(
    "entry",
    [
        tf.Entry(name=b"simple", type=tf.REG, size=5, mode=0o640, uid=1, gid=2, mtime_ns=10**18),
        tf.Entry(name=b"x/" * 120 + b"long", type=tf.REG, size=5, uid=2**33),
        tf.Entry(name="ünï".encode(), type=tf.SYM, linkname=b"l" * 200),
        tf.Entry(name=b"dev", type=tf.BLK, devmajor=8, devminor=1, mode=0o660),
        tf.Entry(name=b"dir/", type=tf.DIR, mode=0o755, xattrs={"user.a": b"\x00\xffbinary"}),
    ],
)
def test_encode_header_round_trips(entry: tf.Entry) -> None:
    payload = b"hello" if entry.type == tf.REG else b""
    raw = tf.encode_header(entry) + payload + bytes(-len(payload) % 512) + bytes(1024)
    [(got, data)] = read(raw)
    assert (got.name, got.type, got.mode, got.uid, got.gid, got.size, got.linkname) == (
        entry.name, entry.type, entry.mode, entry.uid, entry.gid, entry.size, entry.linkname)  # fmt: skip
    assert (got.devmajor, got.devminor, got.xattrs, data) == (
        entry.devmajor,
        entry.devminor,
        entry.xattrs,
        payload,
    )
    assert got.mtime_ns == entry.mtime_ns // 10**9 * 10**9
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:  # and tarfile agrees
        [member] = tar.getmembers()
        assert member.name.rstrip("/") == entry.name.decode().rstrip("/")


def test_unread_data_is_skipped() -> None:
    raw = build(tarfile.PAX_FORMAT, [(info("a", size=5000), b"a" * 5000), (info("b", size=1), b"b")])
    reader = tf.TarReader(iter([raw]))
    assert [e.name for e in reader] == [b"a", b"b"]


def test_missing_end_blocks_are_accepted_but_truncation_is_not() -> None:
    raw = build(tarfile.USTAR_FORMAT, [(info("a", size=600), b"a" * 600)])
    assert [e.name for e, _ in read(raw[:1536])] == [b"a"]
    with pytest.raises(InvalidArgument, match="truncated"):
        read(raw[:1000])
    with pytest.raises(InvalidArgument, match="truncated"):
        read(raw[:300])


def test_unknown_member_types_are_refused() -> None:
    raw = bytearray(build(tarfile.USTAR_FORMAT, [(info("a"), b"")]))
    raw[156:157] = b"M"
    raw[148:156] = b"%06o\0 " % (sum(raw[:148]) + 256 + sum(raw[156:512]))
    with pytest.raises(InvalidArgument, match="unsupported member type"):
        read(bytes(raw))

"""Hostile layers: every escape attempt is refused (InvalidArgument naming the entry) or contained.

Each layer is crafted with ``tarfile`` and applied to ``tmp/root`` next to ``tmp/outside`` (a directory with a
precious file, the target of the attacks). After each attempt, nothing outside ``root`` may have changed.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from kobako.archive.tar import apply_layer
from kobako.errors import InvalidArgument

MODES = [pytest.param(False, id="plain"), pytest.param(True, id="overlay")]


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o644 if kind != tarfile.DIRTYPE else 0o755
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def layer(*members: tuple, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def snapshot(path: Path) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            content = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[str(p.relative_to(path))] = (st.st_mode, st.st_mtime_ns, st.st_nlink, content)
    return out


@pytest.fixture
def arena(tmp_path: Path):  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("do not touch")
    (tmp_path / "root").mkdir()
    before = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("root")}
    yield tmp_path
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("root")}
    assert after == before, "something changed outside the target"


def refused(arena: Path, data: bytes, fragment: str, **kwargs: object) -> str:
    with pytest.raises(InvalidArgument) as info:
        apply_layer(io.BytesIO(data), arena / "root", **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert fragment in message, message
    return message


OUT = "../outside"  # relative to root: tmp/outside


@pytest.mark.parametrize("overlay", MODES)
@pytest.mark.parametrize(
    "name", ["../escape", "a/../../escape", "/../escape", "./../outside/precious", "a/b/../../../outside/x"]
)
def test_dotdot_names_are_refused(arena: Path, name: str, overlay: bool) -> None:
    message = refused(arena, layer(member(name, data=b"x")), "'..' is not allowed", overlay=overlay)
    assert "layer entry" in message


def test_long_names_with_dotdot_are_refused(arena: Path) -> None:
    deep = "d/" * 80 + "../" * 90 + "escape"
    refused(arena, layer(member(deep, data=b"x")), "'..'")  # PAX path record
    refused(arena, layer(member(deep, data=b"x"), fmt=tarfile.GNU_FORMAT), "'..'")  # GNU long name


@pytest.mark.parametrize("overlay", MODES)
def test_absolute_names_are_relative_to_the_root(arena: Path, overlay: bool) -> None:
    apply_layer(io.BytesIO(layer(member("/abs/file", data=b"inside"))), arena / "root", overlay=overlay)
    assert (arena / "root/abs/file").read_text() == "inside"


@pytest.mark.parametrize("overlay", MODES)
@pytest.mark.parametrize("target", ["/", "..", OUT, "/tmp", "../../../../../../"])
def test_no_write_through_a_symlinked_parent(arena: Path, target: str, overlay: bool) -> None:
    data = layer(member("evil", tarfile.SYMTYPE, linkname=target), member("evil/pwned", data=b"gotcha"))
    refused(arena, data, "parent 'evil' is a symlink", overlay=overlay)


@pytest.mark.parametrize("overlay", MODES)
def test_no_write_through_a_symlink_chain_or_a_symlink_inside_the_root(arena: Path, overlay: bool) -> None:
    data = layer(
        member("a", tarfile.SYMTYPE, linkname="b"),
        member("b", tarfile.SYMTYPE, linkname=OUT),
        member("a/precious", data=b"overwritten"),
    )
    refused(arena, data, "is a symlink", overlay=overlay)
    inner = layer(member("real", tarfile.DIRTYPE), member("alias", tarfile.SYMTYPE, linkname="real"),
                  member("alias/x", data=b"x"))  # fmt: skip
    refused(arena, inner, "parent 'alias' is a symlink", overlay=overlay)


@pytest.mark.parametrize("overlay", MODES)
def test_a_file_replaces_a_symlink_instead_of_writing_through_it(arena: Path, overlay: bool) -> None:
    data = layer(member("link", tarfile.SYMTYPE, linkname=f"{OUT}/precious"), member("link", data=b"new"))
    apply_layer(io.BytesIO(data), arena / "root", overlay=overlay)
    assert (arena / "root/link").read_bytes() == b"new" and not (arena / "root/link").is_symlink()


@pytest.mark.parametrize("overlay", MODES)
def test_a_directory_replaced_by_a_symlink_is_not_reused(arena: Path, overlay: bool) -> None:
    data = layer(
        member("d", tarfile.DIRTYPE),
        member("d/first", data=b"1"),
        member("d", tarfile.SYMTYPE, linkname=OUT),  # replaces the directory
        member("d/precious", data=b"overwritten"),
    )
    refused(arena, data, "parent 'd' is a symlink", overlay=overlay)


@pytest.mark.parametrize("overlay", MODES)
def test_symlinks_may_point_anywhere_but_are_never_followed(arena: Path, overlay: bool) -> None:
    data = layer(
        member("etc", tarfile.DIRTYPE),
        member("etc/shadow", tarfile.SYMTYPE, linkname="/etc/shadow"),
        member("up", tarfile.SYMTYPE, linkname="../../../.."),
    )
    apply_layer(io.BytesIO(data), arena / "root", overlay=overlay)
    assert os.readlink(arena / "root/etc/shadow") == "/etc/shadow"
    assert os.readlink(arena / "root/up") == "../../../.."


@pytest.mark.parametrize("overlay", MODES)
@pytest.mark.parametrize(
    ("target", "fragment"),
    [(f"{OUT}/precious", "'..'"), ("/etc/passwd", "does not exist"), ("missing", "does not exist")],
)
def test_hardlinks_out_of_the_root_are_refused(
    arena: Path, target: str, fragment: str, overlay: bool
) -> None:
    refused(arena, layer(member("hl", tarfile.LNKTYPE, linkname=target)), fragment, overlay=overlay)


@pytest.mark.parametrize("overlay", MODES)
def test_hardlinks_through_a_symlinked_parent_are_refused(arena: Path, overlay: bool) -> None:
    data = layer(
        member("evil", tarfile.SYMTYPE, linkname=OUT), member("hl", tarfile.LNKTYPE, linkname="evil/precious")
    )
    refused(arena, data, "is a symlink", overlay=overlay)


@pytest.mark.parametrize("overlay", MODES)
def test_hardlink_to_a_symlink_links_the_symlink_itself(arena: Path, overlay: bool) -> None:
    data = layer(
        member("s", tarfile.SYMTYPE, linkname=f"{OUT}/precious"), member("hl", tarfile.LNKTYPE, linkname="s")
    )
    apply_layer(io.BytesIO(data), arena / "root", overlay=overlay)
    assert os.readlink(arena / "root/hl") == f"{OUT}/precious"


def test_hardlink_to_a_directory_is_refused(arena: Path) -> None:
    data = layer(member("d", tarfile.DIRTYPE), member("hl", tarfile.LNKTYPE, linkname="d"))
    refused(arena, data, "is a directory")


@pytest.mark.parametrize("overlay", MODES)
@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_device_nodes_are_refused_unless_allowed(arena: Path, kind: bytes, overlay: bool) -> None:
    data = layer(member("dev/sda", kind, devmajor=8, devminor=0))
    refused(arena, data, "device nodes are not allowed", overlay=overlay)
    assert not (arena / "root/dev/sda").exists()


@pytest.mark.root
def test_device_nodes_when_allowed_stay_inside(arena: Path) -> None:
    apply_layer(io.BytesIO(layer(member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3))), arena / "root",
                allow_devices=True)  # fmt: skip
    st = (arena / "root/dev/null").lstat()
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


@pytest.mark.parametrize("overlay", MODES)
@pytest.mark.parametrize("name", [".wh..", ".wh...", ".wh.", "sub/.wh.."])
def test_whiteouts_naming_no_sibling_are_refused(arena: Path, name: str, overlay: bool) -> None:
    refused(arena, layer(member(name)), "whiteout names no sibling", overlay=overlay)


@pytest.mark.parametrize("overlay", MODES)
@pytest.mark.parametrize("marker", [".wh.precious", ".wh..wh..opq"])
def test_whiteouts_through_a_symlink_are_refused(arena: Path, marker: str, overlay: bool) -> None:
    data = layer(member("evil", tarfile.SYMTYPE, linkname=OUT), member(f"evil/{marker}"))
    refused(arena, data, "parent 'evil' is a symlink", overlay=overlay)


def test_whiteouts_of_symlinks_remove_the_link_not_its_target(arena: Path) -> None:
    root = arena / "root"
    os.symlink(f"{OUT}", root / "evil")  # a link from a lower layer
    apply_layer(io.BytesIO(layer(member(".wh.evil"))), root)
    assert not os.path.lexists(root / "evil")


@pytest.mark.parametrize("overlay", MODES)
@pytest.mark.parametrize("key", ["trusted.overlay.opaque", "trusted.overlay.redirect", "user.overlay.origin"])
def test_overlay_xattrs_are_refused(arena: Path, key: str, overlay: bool) -> None:
    data = layer(member("d", tarfile.DIRTYPE, pax_headers={f"SCHILY.xattr.{key}": "y"}))
    refused(arena, data, "reserved for overlayfs", overlay=overlay)


def test_the_root_cannot_be_replaced(arena: Path) -> None:
    refused(arena, layer(member(".", tarfile.SYMTYPE, linkname=OUT)), "only a directory may name the root")
    refused(arena, layer(member("/", data=b"x")), "only a directory may name the root")


def test_malformed_archives_are_refused(arena: Path) -> None:
    good = layer(member("f", data=b"x" * 1000))
    bad_sum = bytearray(good)
    bad_sum[0] ^= 0x01
    refused(arena, bytes(bad_sum), "checksum")
    refused(arena, good[:1024], "truncated")
    huge = layer(member("f", pax_headers={"comment": "x" * (2 << 20)}))
    refused(arena, huge, "too large")
    sparse = bytearray(layer(member("s", data=b"")))
    sparse[156:157] = b"S"
    sparse[148:156] = b"%06o\0 " % (sum(sparse[:148]) + 256 + sum(sparse[156:512]))
    refused(arena, bytes(sparse), "sparse")


@pytest.mark.root
def test_overlay_mode_refuses_a_parent_that_is_a_symlink_in_a_lower(arena: Path) -> None:
    lower = arena / "root-lower"  # inside tmp but created before: the fixture compares the rest
    lower.mkdir()
    os.symlink("/", lower / "lib")
    data = layer(member("lib/evil.so", data=b"x"))
    try:
        refused(arena, data, "parent 'lib' is a symlink", overlay=True, lowers=[str(lower)])
        link = layer(member("hl", tarfile.LNKTYPE, linkname="lib/etc/passwd"))
        refused(arena, link, "parent 'lib' is a symlink", overlay=True, lowers=[str(lower)])
    finally:
        os.unlink(lower / "lib")

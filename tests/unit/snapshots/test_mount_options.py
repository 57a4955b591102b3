"""Mount descriptions and option parsing (no mounting here)."""

from __future__ import annotations

import pytest

from kobako import mount as m
from kobako.errors import InvalidArgument


def test_parse_options() -> None:
    flags, prop, data = m.parse_options(
        ["ro", "nosuid", "nodev", "rbind", "rprivate", "size=64m", "mode=755"]
    )
    assert flags == m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV | m.MS_BIND | m.MS_REC
    assert prop == m.MS_PRIVATE | m.MS_REC and data == "size=64m,mode=755"
    assert m.parse_options(["ro", "rw"])[0] == 0
    assert m.parse_options(["lowerdir=/a:/b", "upperdir=/u"])[2] == "lowerdir=/a:/b,upperdir=/u"


def test_mount_value_helpers() -> None:
    mnt = m.Mount("overlay", "overlay", options=["ro", "lowerdir=/a:/b", "upperdir=/u"])
    assert mnt.option("lowerdir") == "/a:/b" and mnt.option("workdir") is None and mnt.readonly
    assert m.Mount.from_dict(mnt.to_dict()) == mnt
    with pytest.raises(InvalidArgument):
        m.Mount.from_dict({"type": "bind", "source": "/x", "options": "ro"})


def test_mountinfo_unescape() -> None:
    assert m._unescape(b"/tmp/with\\040space\\011tab\\134slash") == "/tmp/with space\ttab\\slash"


def test_overlay_options_that_cannot_fit_are_refused_clearly() -> None:
    lowers = ":".join(f"/{'x' * 50}{i}/fs" for i in range(200))  # no common parent to shorten against
    mnt = m.Mount("overlay", "overlay", options=[f"lowerdir={lowers}"])
    with pytest.raises(InvalidArgument, match="too many layers"):
        m.mount(mnt, "/nonexistent-target")


def test_mounted_under_reads_mountinfo() -> None:
    assert "/" in m.mounted_under("/") and m.mounted_under("/nonexistent-kobako-path") == []

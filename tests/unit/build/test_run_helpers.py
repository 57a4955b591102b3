"""RUN helpers without a kernel: --mount parsing, the command for each form, mount-point bookkeeping, pruning
of directories only copied up, and the archive sniffing of ADD."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from kobako.build.container import MountPoints, prune_copied_up
from kobako.build.copy import _archive, _heredoc_name
from kobako.build.dockerfile.parser import parse
from kobako.build.run import command, created_by
from kobako.build.runmounts import parse_mount
from kobako.build.state import StageState
from kobako.errors import FailedPrecondition, InvalidArgument


def test_parse_mount() -> None:
    m = parse_mount("type=cache,target=/root/.cache,id=go,sharing=locked,mode=0700,uid=1,gid=2,ro")
    assert (m.kind, m.target, m.id, m.sharing, m.mode, m.uid, m.gid, m.readonly) == (
        "cache", "/root/.cache", "go", "locked", 0o700, 1, 2, True)  # fmt: skip
    m = parse_mount("source=src,dst=/src,from=build,rw")
    assert (m.kind, m.source, m.target, m.from_, m.readonly) == ("bind", "src", "/src", "build", False)
    assert parse_mount("type=tmpfs,target=/t,size=1024").size == 1024


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("type=secret,id=x", FailedPrecondition, "no secret store"),
        ("type=nfs,target=/x", InvalidArgument, "unknown mount type"),
        ("type=bind,source=x", InvalidArgument, "target is required"),
        ("type=tmpfs,target=/x,from=y", InvalidArgument, "unexpected key 'from'"),
        ("type=cache,target=/x,mode=rwx", InvalidArgument, "not a number"),
        ("type=cache,target=/x,sharing=odd", InvalidArgument, "sharing must be"),
    ],
)
def test_parse_mount_errors(value: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        parse_mount(value)


def _state(shell: list[str] | None = None) -> StageState:
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
              "config": {"Shell": shell} if shell else {}}  # fmt: skip
    return StageState(config, [], "k")


def _run(text: str):  # type: ignore[no-untyped-def]
    return parse("FROM x\n" + text).stages[0].instructions[0]


def test_command_forms() -> None:
    assert command(_run("RUN echo hi"), _state()) == (["/bin/sh", "-c", "echo hi"], None)
    assert command(_run("RUN echo hi"), _state(["/bin/bash", "-xc"])) == (
        ["/bin/bash", "-xc", "echo hi"],
        None,
    )
    assert command(_run('RUN ["echo", "$HOME"]'), _state()) == (["echo", "$HOME"], None)
    assert command(_run("RUN <<EOF\necho a\nEOF\n"), _state()) == (["/bin/sh", "-c", "echo a\n"], None)
    argv, script = command(_run("RUN <<EOF\n#!/usr/bin/env python\nprint(1)\nEOF\n"), _state())
    assert argv == ["/.kobako-build-script"] and script == b"#!/usr/bin/env python\nprint(1)\n"
    argv, _ = command(_run("RUN <<EOT bash\n  set -ex\nEOT\n"), _state())
    assert argv == ["/bin/sh", "-c", "<<EOT bash\n  set -ex\nEOT\n"]
    with pytest.raises(InvalidArgument):
        command(_run("RUN []"), _state())


def test_created_by() -> None:
    assert created_by(["/bin/sh", "-c", "make"], {}) == "RUN /bin/sh -c make"
    assert created_by(["/bin/sh", "-c", "make"], {"B": "2", "A": "1"}) == "RUN |2 A=1 B=2 /bin/sh -c make"


def test_heredoc_names() -> None:
    assert [_heredoc_name(w) for w in ["<<EOF", '<<-"EOT"', "2<<'x'", "file", "<<<no", "<<"]] == [
        "EOF", "EOT", "x", None, None, None]  # fmt: skip


def test_mount_points_made_by_the_run_are_removed(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "proc").mkdir()
    (rootfs / "etc" / "hosts").write_text("image's own\n")
    mounts = [{"destination": d} for d in ("/proc", "/dev", "/dev/pts", "/etc/hosts", "/etc/resolv.conf",
                                          "/run/secrets/x")]  # fmt: skip
    points = MountPoints(str(rootfs), mounts)
    assert sorted(d for d, _, _ in points.created) == ["/dev", "/etc/resolv.conf", "/run/secrets/x"]
    # what the runtime would make
    (rootfs / "dev").mkdir()
    (rootfs / "etc" / "resolv.conf").write_text("")
    (rootfs / "run" / "secrets" / "x").mkdir(parents=True)
    parents = points.remove()
    assert sorted(os.listdir(rootfs)) == ["etc", "proc"] and os.listdir(rootfs / "etc") == ["hosts"]
    assert sorted(parents) == [".", ".", "etc"]


def test_mount_point_with_content_or_moved_is_kept(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    points = MountPoints(str(rootfs), [{"destination": "/data"}, {"destination": "/etc/x"}])
    (rootfs / "data").mkdir()
    (rootfs / "data" / "written").write_text("by the command")
    os.symlink("/", rootfs / "etc")  # the command replaced /etc with a link: never followed
    points.remove()
    assert (rootfs / "data" / "written").exists() and os.path.islink(rootfs / "etc")


def test_prune_copied_up(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for base in (lower, upper):
        (base / "usr" / "local" / "etc").mkdir(parents=True)
    (upper / "usr" / "kept").mkdir()
    (lower / "other").mkdir(mode=0o700)
    (upper / "other").mkdir(mode=0o755)  # mode changed by the command: a real change
    os.chmod(upper / "other", 0o755)
    prune_copied_up(str(upper), [str(lower)], ["usr/local/etc", "other"], "trusted.overlay.opaque")
    assert sorted(os.listdir(upper)) == ["other", "usr"] and os.listdir(upper / "usr") == ["kept"]


def test_archive_sniffing(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("a")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "plain.tar").write_bytes(buf.getvalue())
    (tmp_path / "z.tar.gz").write_bytes(gzip.compress(buf.getvalue()))
    (tmp_path / "fake.tar.gz").write_bytes(b"")
    (tmp_path / "text.gz").write_bytes(gzip.compress(b"just text" * 100))
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b garbage")
    assert _archive(str(tmp_path / "plain.tar")) == "none"
    assert _archive(str(tmp_path / "z.tar.gz")) == "gzip"
    assert [_archive(str(tmp_path / n)) for n in ("fake.tar.gz", "text.gz", "bad.gz")] == [None, None, None]


def test_sweep_stale_removes_only_dead_builds(tmp_path: Path) -> None:
    from kobako.build.layers import sweep_stale, unique_name

    mine = tmp_path / "build" / "mnt" / unique_name("build")
    dead = tmp_path / "build" / "run" / "run-999999999.12345-1-2"
    other = tmp_path / "build" / "mnt" / "unrelated"
    for d in (mine, dead, other):
        d.mkdir(parents=True)
    assert sweep_stale(str(tmp_path)) == [str(dead)]
    assert mine.exists() and other.exists() and not dead.exists()


def test_prune_never_goes_through_a_symlink(tmp_path: Path) -> None:
    lower, upper, outside = tmp_path / "lower", tmp_path / "upper", tmp_path / "outside"
    (lower / "etc" / "sub").mkdir(parents=True)
    upper.mkdir()
    (outside / "sub").mkdir(parents=True)
    os.symlink(outside, upper / "etc")  # the command replaced /etc with a link to a host directory
    prune_copied_up(str(upper), [str(lower)], ["etc/sub"], "trusted.overlay.opaque")
    assert (outside / "sub").is_dir()

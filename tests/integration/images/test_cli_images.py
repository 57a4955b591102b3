"""The image verbs end to end through the real CLI: import, images, inspect, history, tag, rmi, save, load,
prune, system df/check/prune, info."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any as Kobako  # the fixture class lives in conftest.py

import pytest

pytestmark = pytest.mark.root


def _import(kobako: Kobako, busybox_tar: Path, name: str = "busybox", *extra: str) -> str:
    out = kobako("import", *extra, str(busybox_tar), name).out.strip()
    assert out.startswith("sha256:") and len(out) == 71
    return out


def test_import_images_inspect_history(kobako: Kobako, busybox_tar: Path) -> None:
    image_id = _import(kobako, busybox_tar, "busybox", "-c", 'CMD ["sh"]', "--change", "ENV A=1",
                       "-c", "WORKDIR /tmp", "-m", "my message")  # fmt: skip
    lines = kobako("images").out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[0].startswith("REPOSITORY   TAG       IMAGE ID       CREATED")
    assert lines[1].split()[:3] == ["busybox", "latest", image_id[7:19]]
    assert kobako("images", "-q").out.split() == [image_id[7:19]]
    row = json.loads(kobako("images", "--format", "json").out.splitlines()[0])
    assert (row["Repository"], row["Tag"], row["ID"]) == ("busybox", "latest", image_id[7:19])
    assert kobako("images", "--format", "{{.Repository}}:{{.Tag}}").out == "busybox:latest\n"

    doc = json.loads(kobako("image", "inspect", "busybox").out)
    assert len(doc) == 1 and doc[0]["Id"] == image_id
    assert doc[0]["RepoTags"] == ["busybox:latest"] and doc[0]["Os"] == "linux"
    assert doc[0]["Config"] == {"Cmd": ["sh"], "Env": ["A=1"], "WorkingDir": "/tmp"}
    assert doc[0]["Comment"] == "my message" and len(doc[0]["RootFS"]["Layers"]) == 1
    assert doc[0]["Architecture"] == "amd64" and doc[0]["Size"] > 1_000_000
    assert kobako("image", "inspect", "-f", "{{.Id}}", image_id[7:19]).out.strip() == image_id

    hist = kobako("history", "busybox").out.splitlines()
    assert hist[0].split()[:2] == ["IMAGE", "CREATED"] and hist[1].startswith(image_id[7:19])
    assert "my message" in hist[1]

    none = kobako("image", "inspect", "busybox", "nosuch", check=False)
    assert none.returncode == 1 and "no such image: nosuch" in none.err
    assert json.loads(none.out)[0]["Id"] == image_id


def test_import_from_stdin_compressed_and_untagged(kobako: Kobako, busybox_tar: Path) -> None:
    image_id = kobako("import", "-", input=gzip.compress(busybox_tar.read_bytes(), 1)).out.strip()
    lines = kobako("images").out.splitlines()
    assert lines[1].split()[:3] == ["<none>", "<none>", image_id[7:19]]
    doc = json.loads(kobako("image", "inspect", image_id).out)[0]
    assert doc["RepoTags"] == [] and doc["Config"] == {}


def test_tag_and_rmi(kobako: Kobako, busybox_tar: Path) -> None:
    image_id = _import(kobako, busybox_tar)
    kobako("tag", "busybox", "localhost:5000/bb:v1")
    kobako("image", "tag", image_id[7:19], "other")
    names = sorted(line.split()[0] + ":" + line.split()[1] for line in kobako("images").out.splitlines()[1:])
    assert names == ["busybox:latest", "localhost:5000/bb:v1", "other:latest"]
    assert kobako("rmi", "other").out == "Untagged: other:latest\n"
    refused = kobako("rmi", image_id[7:19], check=False)
    assert refused.returncode == 1 and "must be forced" in refused.err
    out = kobako("rmi", "-f", image_id[7:19]).out.splitlines()
    assert out == ["Untagged: busybox:latest", "Untagged: localhost:5000/bb:v1", f"Deleted: {image_id}"]
    assert kobako("images", "-q").out == ""
    assert os.listdir(kobako.root / "content" / "blobs" / "sha256") == []
    missing = kobako("rmi", "busybox", check=False)
    assert missing.returncode == 1 and missing.err == "kobako: no such image: busybox\n"
    bad = kobako("tag", "nosuch", "x", check=False)
    assert bad.returncode != 0 and "no such image: nosuch" in bad.err


def test_rmi_refuses_image_used_by_container(kobako: Kobako, busybox_tar: Path) -> None:
    image_id = _import(kobako, busybox_tar)
    record = kobako.root / "containers" / ("c" * 64)
    record.mkdir(parents=True)
    (record / "config.json").write_text(json.dumps({"id": "c" * 64, "image_id": image_id}))
    refused = kobako("rmi", "busybox", check=False)
    assert refused.returncode == 1 and "container cccccccccccc is using its referenced image" in refused.err
    assert kobako("rmi", "-f", "busybox").out == "Untagged: busybox:latest\n"
    assert kobako("images").out.splitlines()[1].split()[:2] == ["<none>", "<none>"]
    assert "Total reclaimed space: 0B" in kobako("image", "prune", "-f").out  # still in use
    (record / "config.json").unlink()
    out = kobako("image", "prune", "-f").out
    assert f"deleted: {image_id}" in out and "Total reclaimed space: 2." in out


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_and_load(kobako: Kobako, busybox_tar: Path, tmp_path: Path, fmt: str) -> None:
    image_id = _import(kobako, busybox_tar, "busybox", "-c", 'CMD ["sh"]')
    kobako("tag", "busybox", "localhost:5000/bb:v1")
    archive = tmp_path / "out.tar"
    kobako("save", "--format", fmt, "-o", str(archive), "busybox", "localhost:5000/bb:v1")
    kobako("rmi", "-f", image_id)
    out = kobako("load", "-i", str(archive)).out
    assert out == "Loaded image: busybox:latest\nLoaded image: localhost:5000/bb:v1\n"
    assert json.loads(kobako("image", "inspect", "localhost:5000/bb:v1").out)[0]["Id"] == image_id
    again = tmp_path / "again.tar"
    kobako("save", "--format", fmt, "-o", str(again), "busybox", "localhost:5000/bb:v1")
    assert archive.read_bytes() == again.read_bytes()  # deterministic
    kobako("rmi", "-f", image_id)
    piped = kobako("load", input=gzip.compress(archive.read_bytes(), 1)).out
    assert "Loaded image: busybox:latest" in piped
    stdout = kobako("save", "busybox").stdout
    assert stdout[:512].rstrip(b"\0").endswith(b"\0") or len(stdout) > 1024
    assert kobako("system", "check").returncode == 0


def test_save_errors(kobako: Kobako, busybox_tar: Path, tmp_path: Path) -> None:
    _import(kobako, busybox_tar)
    bad = kobako("save", "-o", str(tmp_path / "x.tar"), "--format", "zip", "busybox", check=False)
    assert bad.returncode != 0 and "unknown format" in bad.err
    missing = kobako("save", "-o", str(tmp_path / "x.tar"), "nosuch", check=False)
    assert missing.returncode == 1 and "no such image: nosuch" in missing.err
    assert not (tmp_path / "x.tar").exists()


def test_bad_archives_leave_nothing(kobako: Kobako, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\x00not a tar" * 1000)
    res = kobako("load", "-i", str(junk), check=False)
    assert res.returncode != 0 and res.err.startswith("kobako: not an image archive")
    res = kobako("load", "-i", str(tmp_path / "missing.tar"), check=False)
    assert res.returncode != 0 and "cannot open" in res.err
    res = kobako("import", str(junk), "x", check=False)
    assert res.returncode != 0
    assert os.listdir(kobako.root / "content" / "blobs") == []
    assert os.listdir(kobako.root / "content" / "ingest") == []
    assert kobako("images", "-q").out == ""
    assert kobako("system", "check").returncode == 0


def test_system_df_check_prune_info(kobako: Kobako, busybox_tar: Path) -> None:
    first = _import(kobako, busybox_tar)
    second = _import(kobako, busybox_tar, "busybox", "-c", "CMD sh")  # the first one becomes dangling
    assert first != second
    df = kobako("system", "df").out.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].split()[:3] == ["Images", "2", "0"] and df[1].endswith("(100%)")
    assert [line.split()[0] for line in df[2:]] == ["Containers", "Local", "Build"]
    rows = [json.loads(x) for x in kobako("system", "df", "--format", "json").out.splitlines()]
    assert rows[0]["Type"] == "Images" and rows[0]["TotalCount"] == "2"

    assert "no problems found" in kobako("system", "check").out
    # corrupt the layer blob shared by both images
    layer = json.loads(kobako("image", "inspect", "busybox").out)[0]["RootFS"]["Layers"][0]
    blob = kobako.root / "content" / "blobs" / "sha256" / layer[7:]
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as f:
        f.seek(100)
        f.write(b"CORRUPT")
    res = kobako("system", "check", check=False)
    assert res.returncode == 1 and f"blob {layer}: content hashes to" in res.err
    res = kobako("system", "check", "--repair")  # the blob goes, and so do the images that needed it
    assert f"repaired: deleted corrupt blob {layer}" in res.out
    assert "repaired: removed broken image record docker.io/library/busybox:latest" in res.out
    assert "no problems found" in res.out and kobako("images", "-q").out == ""

    assert kobako("system", "prune").out.startswith("WARNING!")  # no confirmation on a closed stdin
    out = kobako("system", "prune", "-f").out
    assert out.endswith("Total reclaimed space: 0B\n") or "Total reclaimed space" in out

    info = json.loads(kobako("info", "--format", "json").out)
    assert info["KobakoRootDir"] == str(kobako.root) and info["Driver"] == "overlay"
    assert info["CgroupVersion"] in ("1", "2") and info["Images"] == 0
    assert "Storage Driver: overlay" in kobako("system", "info").out


def test_help_and_bad_flags(kobako: Kobako) -> None:
    assert "usage: kobako images" in kobako("images", "--help").out
    res = kobako("images", "--bogus", check=False)
    assert res.returncode == 125 and "unknown flag: --bogus" in res.err
    res = kobako("tag", "onlyone", check=False)
    assert res.returncode == 125 and "exactly 2 arguments" in res.err

"""A ``kobako load`` killed with SIGKILL mid-stream leaves only ingests; ``system check`` removes them and
reports no problem, and the load can be repeated."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any as Kobako  # the fixture class lives in conftest.py

import pytest

pytestmark = pytest.mark.root

BIG = 48 << 20


def _big_archive(tmp_path: Path) -> Path:
    """A docker-archive whose one layer holds a 48 MiB file."""
    layer = tmp_path / "layer.tar"
    payload = tmp_path / "payload"
    payload.write_bytes(os.urandom(BIG))
    with tarfile.open(layer, "w") as tar:
        tar.add(payload, arcname="big.bin")
    import hashlib

    diff = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()  # fmt: skip
    (tmp_path / "config.json").write_bytes(config)
    manifest = [{"Config": "config.json", "RepoTags": ["big:1"], "Layers": ["layer.tar"]}]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("layer.tar", "config.json", "manifest.json"):
            tar.add(tmp_path / name, arcname=name)
    return archive


def _ingest_bytes(root: Path) -> int:
    return sum(os.path.getsize(p) for p in glob.glob(str(root / "content" / "ingest" / "*" / "data")))


def test_killed_load_is_cleaned_and_repeatable(kobako: Kobako, tmp_path: Path) -> None:
    archive = _big_archive(tmp_path)
    data = archive.read_bytes()
    proc = kobako.popen("load", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(data[: len(data) // 2])  # half the layer, then wait until it is being ingested
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while _ingest_bytes(kobako.root) < 8 << 20:
            assert time.monotonic() < deadline, "the load never started ingesting"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert _ingest_bytes(kobako.root) > 0  # the leftover
    assert not glob.glob(str(kobako.root / "content" / "blobs" / "*" / "*"))
    assert kobako("images", "-q").out == ""

    res = kobako("system", "check")
    assert "removed interrupted ingest load-" in res.out and "no problems found" in res.out
    assert os.listdir(kobako.root / "content" / "ingest") == []

    out = kobako("load", "-i", str(archive)).out
    assert out == "Loaded image: big:1\n"
    assert kobako("images").out.splitlines()[1].split()[:2] == ["big", "1"]
    res = kobako("system", "check")
    assert res.out == "system check: no problems found\n"

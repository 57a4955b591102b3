"""LocalStore specifics: on-disk layout, permissions, leftovers of crashed ingests."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from kobako.content.base import Ingester, Manager, Provider, write_blob
from kobako.content.local import LocalStore
from kobako.errors import FailedPrecondition, InvalidArgument
from kobako.oci.digest import Digest


def test_layout_and_protocols(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for face in (Provider, Ingester, Manager):  # structurally one of each (Protocols exist for type checkers)
        assert all(hasattr(store, name) for name in vars(face) if not name.startswith("_"))
    d = write_blob(store, "r", io.BytesIO(b"blob"), Digest.from_bytes(b"blob"))
    path = tmp_path / "blobs" / "sha256" / d.encoded
    assert store.blob_path(d) == str(path) and path.read_bytes() == b"blob"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert os.listdir(tmp_path / "ingest") == []
    assert store.read_bytes(d) == b"blob"
    with pytest.raises(InvalidArgument):
        store.read_bytes(d, limit=2)


def test_closed_writer_refuses_work(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    w = store.writer("r")
    w.write(b"a")
    w.commit()
    with pytest.raises(FailedPrecondition):
        w.write(b"b")
    w.close()  # harmless


def test_stray_and_leftover_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    (tmp_path / "blobs/sha256/not-a-digest").write_bytes(b"")
    (tmp_path / "blobs/md5").mkdir()
    reasons = sorted(p.reason for p in store.verify_all())
    assert reasons == ["file name is not a digest", "unknown digest algorithm directory"]
    assert list(store.list()) == []  # strays are not content
    # a writer that died between mkdir and creating its lock, and an interrupted removal
    (tmp_path / "ingest/deadbeef").mkdir()
    (tmp_path / "ingest/.rm-x-1-2").mkdir()
    store.cleanup_stale(0)
    assert os.listdir(tmp_path / "ingest") == []


def test_resume_with_different_expectation_restarts(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with store.writer("r", Digest.from_bytes(b"one")) as w:
        w.write(b"on")
    with store.writer("r", Digest.from_bytes(b"two")) as w:
        assert w.offset == 0
        w.write(b"two")
        w.commit()
    assert store.info(Digest.from_bytes(b"two")).size == 3


def test_status_of_an_ingest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with store.writer("r", expected_size=10) as w:
        w.write(b"12345")
        st = w.status()
        assert (st.ref, st.offset, st.total) == ("r", 5, 10)
    assert store.status("r").offset == 5

"""The metadata database and the ImageStore over it: records, dangling images, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from kobako.errors import InvalidArgument, NotFound
from kobako.images.store import ImageStore, is_dangling
from kobako.metadata.db import MetadataDB

T1 = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "a" * 64, "size": 10}
T2 = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "b" * 64, "size": 20}
ID1, ID2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    s = ImageStore(MetadataDB(str(tmp_path / "metadata.db")))
    yield s
    s.db.close()


def test_put_get_list(store: ImageStore) -> None:
    assert store.get("docker.io/library/a:latest") is None
    store.set("docker.io/library/a:latest", T1, ID1, {"k": "v"})
    rec = store.get("docker.io/library/a:latest")
    assert (rec.media_type, rec.digest, rec.size, rec.image_id, rec.labels) == (
        T1["mediaType"], T1["digest"], 10, ID1, {"k": "v"})  # fmt: skip
    assert rec.created <= rec.updated
    store.set("docker.io/library/b:latest", T1, ID1)
    assert [r.name for r in store.by_id(ID1)] == ["docker.io/library/a:latest", "docker.io/library/b:latest"]
    names = [r.name for r in store.list()]
    with store.db.transaction() as tx:
        assert tx.ids_with_prefix("sha256:111") == [ID1]
        assert tx.ids_with_prefix("sha256:2") == []
        assert [r.name for r in tx.by_digest(T1["digest"])] == names


def test_retag_leaves_dangling_image(store: ImageStore) -> None:
    store.set("docker.io/library/a:latest", T1, ID1)
    old = store.set("docker.io/library/a:latest", T2, ID2)
    assert old.image_id == ID1
    dangling = store.by_id(ID1)
    assert [r.name for r in dangling] == [ID1] and is_dangling(dangling[0])
    assert dangling[0].digest == T1["digest"]
    store.set("docker.io/library/again:1", T1, ID1)  # naming it again drops the dangling record
    assert [r.name for r in store.by_id(ID1)] == ["docker.io/library/again:1"]


def test_untag_and_remove(store: ImageStore) -> None:
    store.set("docker.io/library/a:latest", T1, ID1)
    rec = store.untag("docker.io/library/a:latest", keep_dangling=True)
    assert rec.image_id == ID1
    assert [r.name for r in store.by_id(ID1)] == [ID1]
    assert store.add_dangling(T1, ID1) is False
    assert [r.name for r in store.remove_image(ID1)] == [ID1]
    assert store.list() == []
    with pytest.raises(NotFound):
        store.untag("docker.io/library/a:latest")
    assert store.add_dangling(T2, ID2) is True


def test_put_rejects_bad_target(store: ImageStore) -> None:
    with pytest.raises(InvalidArgument):
        store.set("x", {"mediaType": "m", "digest": "d"}, ID1)


def test_rollback_on_error(store: ImageStore) -> None:
    with pytest.raises(RuntimeError), store.db.transaction(write=True) as tx:
        tx.put("docker.io/library/a:latest", T1, ID1)
        raise RuntimeError("boom")
    assert store.list() == []


def test_wal_mode(tmp_path: Path, store: ImageStore) -> None:
    store.list()
    assert sqlite3.connect(store.db.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(path: str, start: int) -> None:
    s = ImageStore(MetadataDB(path))
    for i in range(start, start + 40):
        s.set(f"docker.io/library/img{i}:latest", T1, ID1)
    s.db.close()


def test_concurrent_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "metadata.db")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, n * 100)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    db = MetadataDB(path)
    assert len(ImageStore(db).list()) == 160
    db.close()


def test_records_keep_the_namedtuple_api(store: ImageStore) -> None:
    import pickle

    from kobako.metadata.db import ImageRecord

    store.set("docker.io/library/a:latest", T1, ID1, {"k": "v"})
    rec = store.get("docker.io/library/a:latest")
    assert isinstance(rec, ImageRecord) and isinstance(rec, tuple)
    name, media_type, digest, size, image_id, created, updated, labels = rec
    assert (rec.name, rec.digest, rec.size, rec.image_id) == (name, digest, size, image_id)
    assert (rec.created, rec.updated, rec.labels) == (created, updated, labels)
    assert rec._fields == ("name", "media_type", "digest", "size", "image_id", "created", "updated", "labels")
    assert rec._replace(name="x").name == "x" and rec._asdict()["media_type"] == media_type
    assert pickle.loads(pickle.dumps(rec)) == rec
    assert ImageRecord(**rec._asdict()) == rec


def test_wal_with_unsynced_commits(tmp_path: Path) -> None:
    db = MetadataDB(str(tmp_path / "metadata.db"))
    with db.transaction() as tx:
        conn = tx._db
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    db.close()
    again = MetadataDB(str(tmp_path / "metadata.db"))  # a WAL file stays WAL without asking again
    with again.transaction() as tx:
        assert tx._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()

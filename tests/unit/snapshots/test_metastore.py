"""The SQLite snapshot metastore: records, chains, errors, transactions."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kobako.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from kobako.snapshots.base import Kind
from kobako.snapshots.storage import MetaStore


@pytest.fixture
def meta(tmp_path: Path):  # type: ignore[no-untyped-def]
    m = MetaStore(str(tmp_path / "metadata.db"))
    yield m
    m.close()


def test_chain_and_commit(meta: MetaStore) -> None:
    with meta.transaction(write=True) as tx:
        a = tx.create("a", "", Kind.ACTIVE, {"x": "1"})
        tx.commit_active("A", "a", {"y": "2"})
        b = tx.create("b", "A", Kind.ACTIVE, None)
        tx.commit_active("B", "b", None)
        c = tx.create("c", "B", Kind.VIEW, None)
    assert c.parents == [b.id, a.id] and c.info.parent == "B"
    with meta.transaction() as tx:
        rec = tx.get("A")
        assert rec.id == a.id and rec.kind == Kind.COMMITTED and dict(rec.info.labels) == {"x": "1", "y": "2"}
        assert [i.key for i in tx.walk()] == ["A", "B", "c"]
        assert tx.ids() == {a.id, b.id, c.id}


def test_errors(meta: MetaStore) -> None:
    with meta.transaction(write=True) as tx:
        tx.create("a", "", Kind.ACTIVE, None)
        with pytest.raises(AlreadyExists):
            tx.create("a", "", Kind.VIEW, None)
        with pytest.raises(NotFound):
            tx.create("b", "nope", Kind.ACTIVE, None)
        with pytest.raises(FailedPrecondition):
            tx.create("b", "a", Kind.ACTIVE, None)
        with pytest.raises(InvalidArgument):
            tx.create("", "", Kind.ACTIVE, None)
        with pytest.raises(InvalidArgument):
            tx.create("c", "", Kind.COMMITTED, None)
        tx.commit_active("A", "a", None)
        tx.create("child", "A", Kind.ACTIVE, None)
        with pytest.raises(FailedPrecondition, match="has children"):
            tx.remove("A")
        with pytest.raises(AlreadyExists):
            tx.commit_active("A", "child", None)


def test_rollback_on_error(meta: MetaStore) -> None:
    with pytest.raises(RuntimeError), meta.transaction(write=True) as tx:
        tx.create("a", "", Kind.ACTIVE, None)
        raise RuntimeError("boom")
    with meta.transaction() as tx, pytest.raises(NotFound):
        tx.get("a")


def test_ids_are_never_reused(meta: MetaStore) -> None:
    with meta.transaction(write=True) as tx:
        first = tx.create("a", "", Kind.ACTIVE, None).id
        tx.remove("a")
    with meta.transaction(write=True) as tx:
        assert tx.create("a", "", Kind.ACTIVE, None).id > first


def test_labels(meta: MetaStore) -> None:
    with meta.transaction(write=True) as tx:
        tx.create("a", "", Kind.ACTIVE, {"k": "v", "gone": "x"})
        info = tx.update_labels("a", {"gone": None, "new": "1"})
    assert dict(info.labels) == {"k": "v", "new": "1"}


def test_threads_get_their_own_connections(meta: MetaStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                with meta.transaction(write=True) as tx:
                    tx.create(f"t{n}-{i}", "", Kind.ACTIVE, None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with meta.transaction() as tx:
        assert len(tx.walk()) == 80


def _synchronous(meta: MetaStore) -> int:
    return meta._conn().execute("PRAGMA synchronous").fetchone()[0]


def test_wal_and_unsynced_commits_unless_durable(meta: MetaStore) -> None:
    """WAL + synchronous=NORMAL (no fsync per commit); a durable transaction commits with FULL and the
    connection goes back to NORMAL, also when the block fails."""
    conn = meta._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert _synchronous(meta) == 1  # NORMAL
    with meta.transaction(write=True, durable=True) as tx:
        assert _synchronous(meta) == 2  # FULL while this transaction commits
        tx.create("a", "", Kind.ACTIVE, None)
    assert _synchronous(meta) == 1
    with pytest.raises(NotFound), meta.transaction(write=True, durable=True) as tx:
        tx.remove("nope")
    assert _synchronous(meta) == 1
    with meta.transaction() as tx:
        assert tx.get("a").kind == Kind.ACTIVE
    meta.checkpoint()  # nothing to assert but that it works on an open connection


def test_a_failed_commit_leaves_no_open_transaction(meta: MetaStore) -> None:
    with meta.transaction(write=True) as tx:
        tx.create("a", "", Kind.ACTIVE, None)
    with pytest.raises(InvalidArgument), meta.transaction(write=True) as tx:
        tx.create("b", "", Kind.ACTIVE, None)
        raise InvalidArgument("boom")
    with meta.transaction(write=True) as tx:  # BEGIN would fail inside a leftover transaction
        assert [i.key for i in tx.walk()] == ["a"]


def test_records_are_tuples_with_named_fields(meta: MetaStore) -> None:
    import copy
    import pickle

    with meta.transaction(write=True) as tx:
        rec = tx.create("a", "", Kind.ACTIVE, {"k": "v"})
    sid, info, parents = rec
    assert (rec.id, rec.info, rec.parents, rec.key, rec.kind) == (sid, info, parents, "a", Kind.ACTIVE)
    key, kind, parent, labels, created, updated = info
    assert (
        (info.key, info.kind, info.parent, info.labels)
        == (key, kind, parent, labels)
        == ("a", Kind.ACTIVE, "", {"k": "v"})
    )
    assert info._asdict()["created"] == created and info._fields[-1] == "updated"
    assert info._replace(key="b").key == "b" and info._replace(key="b").updated == updated
    assert pickle.loads(pickle.dumps(info)) == info and copy.deepcopy(info).kind is Kind.ACTIVE
    assert repr(info).startswith("Info(key='a', kind=Kind.ACTIVE")
    with pytest.raises(ValueError):
        info._replace(nope=1)

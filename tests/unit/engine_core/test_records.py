"""Container records: ids, names (unique, atomic claims, stale links), lookup by id/prefix/name, rename."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.engine import names
from kobako.engine.containers import ContainerRecord, ContainerStore
from kobako.errors import Conflict, InvalidArgument, NotFound


def _new(store: ContainerStore, name: str | None = None) -> ContainerRecord:
    return store.create(
        ContainerRecord("", "", "busybox", created="2026-01-01T00:00:00.000000000Z"), name=name
    )


def test_create_gives_64_hex_id_and_random_name(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    rec = _new(store)
    assert len(rec.id) == 64 and all(c in "0123456789abcdef" for c in rec.id)
    adjective, _, noun = rec.name.partition("_")
    assert adjective in names.ADJECTIVES and noun in names.NOUNS
    assert store.load(rec.id).to_dict() == rec.to_dict()


def test_lookup_by_id_prefix_and_name(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    rec = _new(store, "web")
    assert store.get(rec.id).id == rec.id
    assert store.get(rec.id[:5]).id == rec.id
    assert store.get("web").id == rec.id
    assert store.get("/web").id == rec.id
    with pytest.raises(NotFound, match="no such container: nothere"):
        store.get("nothere")


def test_ambiguous_prefix(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    seen: dict[str, str] = {}
    while True:  # two ids sharing a first digit (at most 17 tries)
        rec = _new(store)
        if rec.id[0] in seen:
            break
        seen[rec.id[0]] = rec.id
    common = rec.id[0]
    with pytest.raises(InvalidArgument, match="multiple containers"):
        store.get(common)


def test_names_are_unique_and_validated(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    first = _new(store, "db")
    with pytest.raises(Conflict, match='the container name "/db" is already in use'):
        _new(store, "db")
    for bad in ("x", "-lead", "has space", "a/b"):
        with pytest.raises(InvalidArgument):
            _new(store, bad)
    assert [r.id for r in store.list()] == [first.id]


def test_stale_name_link_is_reclaimed(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    rec = _new(store, "app")
    # A crash between removing the directory and the name link leaves a stale link.
    import shutil

    shutil.rmtree(store.path(rec.id))
    again = _new(store, "app")
    assert store.get("app").id == again.id


def test_remove_frees_the_name(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    rec = _new(store, "gone")
    store.remove(rec)
    with pytest.raises(NotFound):
        store.get("gone")
    assert _new(store, "gone").name == "gone"


def test_rename(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    rec = _new(store, "old")
    _new(store, "taken")
    with pytest.raises(Conflict):
        store.rename(rec, "taken")
    store.rename(rec, "new")
    assert store.get("new").id == rec.id
    with pytest.raises(NotFound):
        store.get("old")
    assert store.load(rec.id).name == "new"


def test_lock_on_removed_record_is_not_found(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    rec = _new(store)
    with store.lock(rec.id):
        pass
    store.remove(rec)
    with pytest.raises(NotFound), store.lock(rec.id):
        pass


def test_orphan_dirs(tmp_path: Path) -> None:
    store = ContainerStore(str(tmp_path))
    _new(store)
    os.makedirs(store.path("a" * 64))
    assert store.orphan_dirs() == ["a" * 64]
    assert len(store.list()) == 1


def test_create_keeps_an_id_given_to_it(tmp_path: Path) -> None:
    """`run` names the snapshot after the id in the very first write of the record, so it picks the id."""
    store = ContainerStore(str(tmp_path))
    cid = "ab" * 32
    rec = store.create(ContainerRecord(cid, "", "busybox", snapshot_key=cid), name="given")
    assert rec.id == cid and store.load(cid).snapshot_key == cid
    with pytest.raises(Conflict, match="already exists"):
        store.create(ContainerRecord(cid, "", "busybox"), name="other")
    assert store.get("given").id == cid and store.get(cid).name == "given"  # the first one is untouched
    with pytest.raises(NotFound):
        store.get("other")  # the failed create released its name
    with pytest.raises(InvalidArgument):
        store.create(ContainerRecord("../x", "", "busybox"))

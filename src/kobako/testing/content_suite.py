"""The shared conformance suite for content stores (Provider + Ingester + Manager).

Every check is a plain function ``check(factory, work)``: ``factory(root)`` builds a store on an empty directory
and must be importable as ``module:qualname`` (the crash and multi-process checks rebuild the store in child
processes); ``work`` is an empty scratch directory. A conformance test parametrizes over :data:`CHECKS`::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_local_store(check, tmp_path):
        check(LocalStore, tmp_path)
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kobako.content.base import Store, write_blob
from kobako.errors import AlreadyExists, InvalidArgument, NotFound, Unavailable
from kobako.oci.digest import Digest

Factory = Callable[[str], Store]


def _store(factory: Factory, work: Path) -> Store:
    return factory(str(work / "store"))


def _blob(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _spec(factory: Factory) -> str:
    return f"{factory.__module__}:{factory.__qualname__}"


def _child(factory: Factory, root: Path, body: str) -> subprocess.Popen[bytes]:
    module, name = _spec(factory).split(":")
    code = f"import importlib, sys, time\nstore = getattr(importlib.import_module({module!r}), {name!r})({str(root)!r})\n{body}"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def check_write_then_read(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    data = _blob(3 * 1024 * 1024 + 17)
    digest = Digest.from_bytes(data)
    with store.writer("ref-1", digest, len(data)) as w:
        for i in range(0, len(data), 65536):
            w.write(data[i : i + 65536])
        assert w.offset == len(data) and w.digest() == digest
        assert w.commit(len(data), digest) == digest
    info = store.info(digest)
    assert (info.digest, info.size) == (digest, len(data))
    with store.reader(str(digest)) as r:
        assert r.read() == data
    assert [i.digest for i in store.list()] == [digest]
    assert store.statuses() == []


def check_empty_blob(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    d = write_blob(store, "empty", io.BytesIO(b""), Digest.from_bytes(b""), 0)
    assert store.info(d).size == 0


def check_digest_mismatch_is_refused_and_invisible(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    wrong = Digest.from_bytes(b"something else")
    with store.writer("bad") as w:
        w.write(b"payload")
        try:
            w.commit(7, wrong)
            raise AssertionError("a wrong digest was accepted")
        except InvalidArgument as exc:
            assert "digest mismatch" in str(exc)
    for d in (wrong, Digest.from_bytes(b"payload")):
        _expect(NotFound, store.info, d)
    assert store.statuses() == [] and list(store.list()) == []


def check_size_mismatch_is_refused(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    data = b"twelve bytes"
    with store.writer("short") as w:
        w.write(data)
        _expect(InvalidArgument, w.commit, len(data) + 1, Digest.from_bytes(data))
    _expect(NotFound, store.info, Digest.from_bytes(data))
    with store.writer("long", expected_size=4) as w:
        _expect(InvalidArgument, w.write, data)


def check_existing_content(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    d = write_blob(store, "one", io.BytesIO(b"dup"), Digest.from_bytes(b"dup"))
    _expect(AlreadyExists, store.writer, "two", d)
    with store.writer("three") as w:  # same bytes without announcing them
        w.write(b"dup")
        _expect(AlreadyExists, w.commit, 3, d)
    assert write_blob(store, "four", io.BytesIO(b"dup"), d) == d  # idempotent helper
    assert store.statuses() == []


def check_ref_is_exclusive_and_resumable(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    data = _blob(200_000, 1)
    w = store.writer("shared-ref")
    w.write(data[:50_000])
    _expect(Unavailable, store.writer, "shared-ref")
    _expect(Unavailable, store.abort, "shared-ref")
    w.close()
    status = [s for s in store.statuses() if s.ref == "shared-ref"]
    assert status and status[0].offset == 50_000
    with store.writer("shared-ref") as w2:
        assert w2.offset == 50_000
        w2.write(data[50_000:])
        assert w2.commit(len(data), Digest.from_bytes(data)) == Digest.from_bytes(data)
    with store.writer("restart") as w3:
        w3.write(b"garbage")
        w3.truncate(0)
        w3.write(b"clean")
        assert w3.commit(5, Digest.from_bytes(b"clean"))


def check_abort(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    with store.writer("to-abort") as w:
        w.write(b"partial")
    store.abort("to-abort")
    _expect(NotFound, store.abort, "to-abort")
    assert store.statuses() == []
    with store.writer("to-abort") as w:
        assert w.offset == 0


def check_labels_list_delete(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    a = write_blob(store, "a", io.BytesIO(b"a"), Digest.from_bytes(b"a"), labels={"gc.root": "1", "x": "y"})
    b = write_blob(store, "b", io.BytesIO(b"b"), Digest.from_bytes(b"b"))
    assert store.info(a).labels == {"gc.root": "1", "x": "y"}
    assert [i.digest for i in store.list({"gc.root": "1"})] == [a]
    assert store.update(a, {"x": None, "z": "1"}).labels == {"gc.root": "1", "z": "1"}
    assert store.update(b, {"k": "v"}).labels == {"k": "v"}
    store.delete(a)
    _expect(NotFound, store.info, a)
    _expect(NotFound, store.reader, a)
    _expect(NotFound, store.delete, a)
    _expect(NotFound, store.update, a, {"k": "v"})
    assert [i.digest for i in store.list()] == [b]


def check_invalid_digests(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    for bad in ("sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, "nocolon", "sha256:../../etc/passwd"):
        _expect(InvalidArgument, store.info, bad)
        _expect(InvalidArgument, store.writer, "r", bad)


def check_concurrent_threads_same_blob(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    data = _blob(2 * 1024 * 1024, 2)
    d = Digest.from_bytes(data)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            w = store.writer(f"thread-{i}")
            with w:
                for j in range(0, len(data), 100_000):
                    w.write(data[j : j + 100_000])
                w.commit(len(data), d)
        except AlreadyExists:
            pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with store.reader(d) as r:
        assert hashlib.sha256(r.read()).hexdigest() == d.encoded
    assert store.statuses() == [] and store.verify_all() == []


def check_concurrent_processes(factory: Factory, work: Path) -> None:
    root = work / "store"
    factory(str(root))
    data = _blob(1024 * 1024, 3)
    d = Digest.from_bytes(data)
    (work / "data").write_bytes(data)
    body = f"""
import io
from kobako.content.base import write_blob
from kobako.errors import NotFound
from kobako.oci.digest import Digest
data, d = open({str(work / "data")!r}, "rb").read(), Digest.parse({str(d)!r})
for i in range(6):
    assert write_blob(store, f"p-{{PROC}}-{{i}}", io.BytesIO(data), d) == d
    if i % 2:
        try:
            store.delete(d)  # racing the other writers' commits must not hurt them
        except NotFound:
            pass
print("ok")
"""
    procs = [_child(factory, root, body.replace("{PROC}", str(n))) for n in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == b"ok", err.decode()
    store = factory(str(root))
    assert store.verify_all() == [] and store.statuses() == []


def check_kill_9_leaves_store_consistent(factory: Factory, work: Path) -> None:
    """``kill -9`` a writer at random moments: nothing partial is ever visible and leftovers are cleanable."""
    root = work / "store"
    factory(str(root))
    data = _blob(4 * 1024 * 1024, 4)
    (work / "data").write_bytes(data)
    d = Digest.from_bytes(data)
    body = (
        f"data = open({str(work / 'data')!r}, 'rb').read()\n"
        "w = store.writer('victim')\nprint('open', flush=True)\n"
        "for i in range(0, len(data), 65536):\n    w.write(data[i:i + 65536])\n    time.sleep(0.001)\n"
        f"w.commit({len(data)})\nprint('done', flush=True)\n"
    )
    rng = random.Random(5)
    for _ in range(6):
        p = _child(factory, root, body)
        assert p.stdout is not None
        p.stdout.readline()  # wait until the ingest is open
        time.sleep(rng.uniform(0, 0.15))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        p.stderr.close()  # type: ignore[union-attr]
        store = factory(str(root))
        assert store.verify_all() == [], "a killed writer corrupted the store"
        try:
            with store.reader(d) as r:
                assert r.read() == data
            store.delete(d)
        except NotFound:
            pass
        store.cleanup_stale(0)
        assert store.statuses() == []
    store = factory(str(root))
    assert write_blob(store, "victim", io.BytesIO(data), d) == d


def check_cleanup_stale_spares_live_ingests(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    live = store.writer("live")
    live.write(b"still writing")
    with store.writer("old") as w:
        w.write(b"abandoned")
    assert store.cleanup_stale(3600) == []  # both too recent
    store.cleanup_stale(0)
    refs = [s.ref for s in store.statuses()]
    assert refs == ["live"], refs
    live.write(b"!")
    assert live.commit(14, Digest.from_bytes(b"still writing!"))
    live.close()


def check_verify_all_finds_corruption(factory: Factory, work: Path) -> None:
    store = _store(factory, work)
    d = write_blob(store, "c", io.BytesIO(b"precious"), Digest.from_bytes(b"precious"))
    assert store.verify_all() == []
    path = getattr(store, "blob_path", None)
    if path is None:  # the store hides its layout: nothing to corrupt from here
        return
    os.chmod(path(d), 0o644)
    with open(path(d), "r+b") as f:
        f.write(b"P")
    problems = store.verify_all()
    assert [p.digest for p in problems] == [d]


def _expect(exc: type[BaseException], fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except exc:
        return
    raise AssertionError(f"{getattr(fn, '__name__', fn)}{args!r} did not raise {exc.__name__}")


CHECKS: list[Callable[[Factory, Path], None]] = [
    check_write_then_read,
    check_empty_blob,
    check_digest_mismatch_is_refused_and_invisible,
    check_size_mismatch_is_refused,
    check_existing_content,
    check_ref_is_exclusive_and_resumable,
    check_abort,
    check_labels_list_delete,
    check_invalid_digests,
    check_concurrent_threads_same_blob,
    check_concurrent_processes,
    check_kill_9_leaves_store_consistent,
    check_cleanup_stale_spares_live_ingests,
    check_verify_all_finds_corruption,
]

"""Log lines and rotation, attach frames, and task observation from stored pids."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kobako.engine import attach, logs, tasks
from kobako.engine.containers import ContainerRecord, ContainerStore


def test_writer_splits_lines_and_keeps_partial(tmp_path: Path) -> None:
    w = logs.LogWriter(str(tmp_path / "ctr.log"))
    w.write("stdout", b"one\ntw")
    w.write("stderr", b"err\n")
    w.write("stdout", b"o\n\xff")
    w.close()
    lines = [json.loads(x) for x in (tmp_path / "ctr.log").read_text().splitlines()]
    assert [(x["log"], x["stream"]) for x in lines] == [
        ("one\n", "stdout"), ("err\n", "stderr"), ("two\n", "stdout"), ("\ufffd", "stdout")]  # fmt: skip
    assert all(x["time"].endswith("Z") for x in lines)


def test_rotation_keeps_one_old_file(tmp_path: Path) -> None:
    path = str(tmp_path / "ctr.log")
    w = logs.LogWriter(path, limit=500)
    for i in range(100):
        w.write("stdout", f"line {i}\n".encode())
    w.close()
    assert os.path.exists(path + ".1") and not os.path.exists(path + ".2")
    entries, _ino, _off = logs.read(path)
    texts = [e.log for e in entries]
    assert texts[-1] == "line 99\n"
    assert texts == [f"line {i}\n" for i in range(100 - len(texts), 100)]
    tail, _, _ = logs.read(path, tail=2)
    assert [e.log for e in tail] == ["line 98\n", "line 99\n"]


def test_follow_reads_new_entries_across_rotation(tmp_path: Path) -> None:
    path = str(tmp_path / "ctr.log")
    w = logs.LogWriter(path, limit=1000)  # rotates once below
    w.write("stdout", b"first\n")
    _entries, ino, offset = logs.read(path)
    for i in range(20):
        w.write("stdout", f"more {i}\n".encode())
    w.close()
    got = [e.log for e in logs.follow(path, ino, offset, lambda: False, interval=0)]
    assert got[-1] == "more 19\n" and "more 0\n" in got


def test_a_line_being_written_is_left_whole_to_follow(tmp_path: Path) -> None:
    path = tmp_path / "ctr.log"
    whole = b'{"log":"hello\\n","stream":"stdout","time":"2026-11-28T00:00:00Z"}\n'
    path.write_bytes(whole + whole[:20])  # read() meets the writer in the middle of a line
    entries, ino, offset = logs.read(str(path))
    assert [e.log for e in entries] == ["hello\n"] and offset == len(whole)
    with open(path, "ab") as f:
        f.write(whole[20:])
    assert [e.log for e in logs.follow(str(path), ino, offset, lambda: False, interval=0)] == ["hello\n"]


def test_follow_keeps_what_was_written_before_the_file_was_removed(tmp_path: Path) -> None:
    """`docker run --rm`: the client reads the followed output after the container (and its log) is gone."""
    path = str(tmp_path / "ctr.log")
    w = logs.LogWriter(path)
    _entries, ino, offset = logs.read(path)  # not there yet: the container has not written
    w.write("stdout", b"early\n")
    states = iter([True, False])
    stream = logs.follow(path, ino, offset, lambda: next(states), interval=0)
    assert next(stream).log == "early\n"  # the file is open from here on
    w.write("stdout", b"late\n")
    w.close()
    os.unlink(path)
    assert [e.log for e in stream] == ["late\n"]


def test_long_lines_are_cut_in_pieces(tmp_path: Path) -> None:
    w = logs.LogWriter(str(tmp_path / "ctr.log"))
    w.write("stdout", b"x" * 40000 + b"\n")
    w.close()
    entries, _, _ = logs.read(str(tmp_path / "ctr.log"))
    assert "".join(e.log for e in entries) == "x" * 40000 + "\n"
    assert len(entries) == 3


def test_frames_round_trip() -> None:
    reader = attach.FrameReader()
    data = attach.frame(attach.STDOUT, b"hello") + attach.frame(attach.EXIT, b"3")
    assert reader.feed(data[:3]) == []
    assert reader.feed(data[3:]) == [(attach.STDOUT, b"hello"), (attach.EXIT, b"3")]


def _record(tmp_path: Path) -> tuple[ContainerStore, ContainerRecord]:
    store = ContainerStore(str(tmp_path))
    return store, store.create(ContainerRecord("", "", "img"))


def test_observe_dead_monitor_and_dead_container_is_exited_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOBAKO_ROOT", str(tmp_path))
    store, rec = _record(tmp_path)
    tasks.save(store, rec.id, tasks.TaskState(status="running", pid=999999, pid_start=5, monitor_pid=999998,
                                               monitor_start=5, started_at="2026-01-01T00:00:00Z"))  # fmt: skip
    st = tasks.observe(store, rec.id)
    assert st.status == "exited" and st.exit_code == tasks.UNKNOWN_EXIT and st.finished_at.endswith("Z")


def test_observe_sees_an_exit_the_monitor_recorded_while_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor records the exit code, deletes the runtime state and exits, all between observe's first
    read and its check of the monitor: the recorded code wins over "unknown"."""
    monkeypatch.setenv("KOBAKO_ROOT", str(tmp_path))
    store, rec = _record(tmp_path)
    running = tasks.TaskState(status="running", pid=999999, pid_start=5, monitor_pid=999998, monitor_start=5)
    tasks.save(store, rec.id, running)
    recorded = tasks.TaskState(status="exited", exit_code=137, finished_at="2026-01-01T00:00:01Z")

    def monitor_gone(st: tasks.TaskState) -> bool:
        tasks.save(store, rec.id, recorded)  # what the monitor wrote just before it went
        return False

    monkeypatch.setattr(tasks, "monitor_alive", monitor_gone)
    st = tasks.observe(store, rec.id)
    assert (st.status, st.exit_code) == ("exited", 137)


def test_observe_live_monitor_is_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOBAKO_ROOT", str(tmp_path))
    store, rec = _record(tmp_path)
    me = os.getpid()
    tasks.save(store, rec.id, tasks.TaskState(status="restarting", exit_code=3, monitor_pid=me,
                                               monitor_start=tasks.process_start_time(me)))  # fmt: skip
    assert tasks.observe(store, rec.id).status == "restarting"
    tasks.save(
        store, rec.id, tasks.TaskState(status="restarting", exit_code=3, monitor_pid=me, monitor_start=1)
    )
    st = tasks.observe(store, rec.id)  # a recycled pid is not our monitor
    assert (st.status, st.exit_code) == ("exited", 3)


def test_stop_flag(tmp_path: Path) -> None:
    store, rec = _record(tmp_path)
    tasks.mark_stopped(store, rec.id)
    assert os.path.exists(store.path(rec.id, tasks.STOPPED_FLAG))
    tasks.mark_stopped(store, rec.id, False)
    tasks.mark_stopped(store, rec.id, False)
    assert not os.path.exists(store.path(rec.id, tasks.STOPPED_FLAG))

"""`run --rm` hand-over: the client waits for the monitor's NETDOWN and tears down itself when it must."""

from __future__ import annotations

import socket

import pytest

from kobako.engine import attach, monitor_net, service


@pytest.fixture
def teardowns(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(monitor_net, "teardown", lambda store, cid, lazy=None: calls.append((cid, lazy)))
    return calls


def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def test_netdown_without_error_leaves_nothing_to_do(teardowns: list) -> None:
    client, monitor = _pair()
    with client, monitor:
        monitor.sendall(attach.frame(attach.EXIT, b"0") + attach.frame(attach.NETDOWN))
        service._await_network_down(None, "c1", client, attach.FrameReader())  # type: ignore[arg-type]
    assert teardowns == []


def test_a_failed_teardown_in_the_monitor_is_tried_again_here(teardowns: list) -> None:
    client, monitor = _pair()
    with client, monitor:
        monitor.sendall(attach.frame(attach.NETDOWN, b"netlink: busy"))
        service._await_network_down(None, "c2", client, attach.FrameReader())  # type: ignore[arg-type]
    assert teardowns == [("c2", True)]


def test_a_monitor_gone_without_netdown_leaves_the_teardown_to_us(teardowns: list) -> None:
    client, monitor = _pair()
    with client:
        monitor.sendall(attach.frame(attach.NETDOWN)[:3])  # half a frame, then the monitor dies
        monitor.close()
        service._await_network_down(None, "c3", client, attach.FrameReader())  # type: ignore[arg-type]
    assert teardowns == [("c3", True)]


def test_buffered_frames_from_the_attach_loop_are_read_first(teardowns: list) -> None:
    client, monitor = _pair()
    reader = attach.FrameReader()
    reader.feed(attach.frame(attach.STDOUT, b"tail")[:4])  # what the attach loop left half-read
    with client, monitor:
        monitor.sendall(attach.frame(attach.STDOUT, b"tail")[4:] + attach.frame(attach.NETDOWN))
        service._await_network_down(None, "c4", client, reader)  # type: ignore[arg-type]
    assert teardowns == []

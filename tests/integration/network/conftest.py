"""A private network namespace per test: everything kobako's networking does happens inside it.

``netsb.call(fn, *args)`` runs ``fn`` in a forked child that has joined the test's namespace (the pytest
process never moves) and returns its result; ``netsb.cmd(...)`` runs a command there (``nsenter --net``,
which leaves the mount namespace alone so the runtime still sees /sys/fs/cgroup). The namespace acts as
the "host": bridges, veths and the nftables table live in it, and deleting it at the end takes all of
that along; container namespaces (bind mounts under the test's root) are unmounted too. Nothing is sent
anywhere but between the test's own namespaces.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kobako.testing.runtime_cli import unique

CLONE_NEWNET = 0x40000000


class NetSandbox:
    def __init__(self, root: Path) -> None:
        self.name = unique("kbnet")
        self.root = root
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.path = f"/run/netns/{self.name}"
        self.cmd("ip", "link", "set", "lo", "up")

    def cmd(self, *args: str, check: bool = True, timeout: float = 60, env: dict | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        proc = subprocess.run(["nsenter", f"--net={self.path}", *args], capture_output=True, text=True,
                              timeout=timeout, check=False, env=env, input=input)  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def call(self, fn: Callable, *args: object, timeout: float = 120) -> object:
        """``fn(*args)`` in a child inside the namespace; its exception is re-raised here."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                os.close(r)
                from kobako.runtime.syscalls import linux

                fd = os.open(self.path, os.O_RDONLY)
                linux.setns(fd, CLONE_NEWNET)
                os.close(fd)
                result: tuple = ("ok", fn(*args), "")
            except BaseException as exc:
                import traceback

                result = ("err", exc, traceback.format_exc())
            try:
                data = pickle.dumps(result)
            except Exception:
                data = pickle.dumps(("err", RuntimeError(repr(result[1])), result[2]))
            try:
                with os.fdopen(w, "wb") as f:
                    f.write(data)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        status, value, trace = pickle.loads(data)
        if status == "err":
            value.add_note("in the namespace:\n" + trace)
            raise value
        return value

    def service(self, **kw: object):  # type: ignore[no-untyped-def]
        """A NetworkService on the test's root (call it inside ``call``): no host resolvers."""
        from kobako.engine.network.service import NetworkService

        kw.setdefault("resolv_conf", "")
        return NetworkService(str(self.root), **kw)  # type: ignore[arg-type]

    def links(self) -> list[str]:
        out = self.cmd("ip", "-o", "link", "show").stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    def ruleset(self) -> str:
        return self.cmd("nft", "list", "ruleset").stdout

    def close(self) -> None:
        netns_dir = self.root / "run" / "netns"
        if netns_dir.exists():
            for entry in netns_dir.iterdir():
                subprocess.run(["umount", "-l", str(entry)], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


@pytest.fixture
def netsb(tmp_path: Path) -> Iterator[NetSandbox]:
    sb = NetSandbox(tmp_path / "root")
    try:
        yield sb
    finally:
        sb.close()


# -- sockets in a namespace (used inside ``call``) ------------------------------------------------------


def sock_in(path: str | None, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket in the namespace at ``path`` (None: the caller's)."""
    if path is None:
        return socket.socket(socket.AF_INET, kind)
    from kobako.engine.network import netns

    return netns.run_in(path, lambda: socket.socket(socket.AF_INET, kind))


def serve(path: str | None, port: int, reply: bytes, udp: bool = False, count: int = 8) -> socket.socket:
    """Answer up to ``count`` TCP connections (or UDP datagrams) with ``reply`` + the peer's address."""
    sock = sock_in(path, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    if not udp:
        sock.listen(16)

    def loop() -> None:
        for _ in range(count):
            try:
                if udp:
                    _data, peer = sock.recvfrom(2048)
                    sock.sendto(reply + b" " + peer[0].encode(), peer)
                else:
                    conn, peer = sock.accept()
                    with conn:
                        conn.sendall(reply + b" " + peer[0].encode())
            except OSError:
                return

    threading.Thread(target=loop, daemon=True).start()
    return sock


def ask(path: str | None, ip: str, port: int, udp: bool = False, timeout: float = 2.0) -> str:
    """The server's reply, or raise OSError (refused, unreachable, timed out)."""
    sock = sock_in(path, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    with sock:
        sock.settimeout(timeout)
        if udp:
            sock.sendto(b"ping", (ip, port))
            return sock.recvfrom(2048)[0].decode()
        sock.connect((ip, port))
        return sock.recv(2048).decode()


def unreachable(path: str | None, ip: str, port: int, udp: bool = False) -> bool:
    try:
        ask(path, ip, port, udp=udp, timeout=1.0)
    except OSError:
        return True
    return False


NetSandbox.sock_in = staticmethod(sock_in)  # type: ignore[attr-defined]
NetSandbox.serve = staticmethod(serve)  # type: ignore[attr-defined]
NetSandbox.ask = staticmethod(ask)  # type: ignore[attr-defined]
NetSandbox.unreachable = staticmethod(unreachable)  # type: ignore[attr-defined]

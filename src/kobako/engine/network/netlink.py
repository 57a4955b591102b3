"""rtnetlink requests: pyroute2's message classes (encode/decode) on a plain netlink socket.

Why not ``pyroute2.IPRoute``: ``import pyroute2`` runs a package ``__init__`` that imports every subsystem
(conntrack, ipdb, ndb, wireguard, nl80211...: ~200 ms here), IPRoute drives an asyncio loop per call and,
for another namespace, forks a helper process to open its socket. We need six message kinds, so we load
only ``pyroute2.netlink.rtnl.{ifinfmsg,ifaddrmsg,rtmsg}`` (~35 ms, see ``load_messages``) and open sockets
inside a namespace with a thread (``kobako.engine.network.netns``).

``Netlink(sock).request(type, msg)`` sends one message and waits for its ack; ``dump`` collects a multipart
reply. Kernel errors come back as ``OSError`` with the errno, which the callers translate.

The requests a container's setup and teardown make (links, addresses, the default route, a link's index)
are encoded here with ``struct`` instead (``ifinfo``/``ifaddr``/``route``/``attr`` + ``Netlink.send_raw``):
importing pyroute2's message classes costs ~35 ms of a container start, encoding them ~10 µs. pyroute2
still decodes the dumps (``links``, ``addresses``: ``kobako system check``, ``network create``).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 1, 2, 4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE, NLM_F_REPLACE = 0x200, 0x400, 0x100
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFF_UP = 1
_HDR = struct.Struct("=IHHII")
# Attribute numbers (linux/if_link.h, if_addr.h, rtnetlink.h, veth.h).
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER, IFLA_BRPORT_MODE = 1, 4
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY, RTA_METRICS, RTAX_MTU = 4, 5, 8, 2
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags

_messages: Any = None


def _light_pyroute2() -> None:
    """Register ``pyroute2`` as a bare package so importing a submodule skips its heavy ``__init__``.

    The first use of any top-level name (``from pyroute2 import IPRoute`` elsewhere) still gets the full
    package: the module's ``__getattr__`` runs the real ``__init__`` then."""
    if "pyroute2" in sys.modules:
        return
    spec = None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find("pyroute2", None) if find else None
        if spec is not None:
            break
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("pyroute2 is not installed")
    module = type(sys)("pyroute2")
    module.__path__ = list(spec.submodule_search_locations)
    module.__spec__, module.__file__, module.__loader__ = spec, spec.origin, spec.loader
    module.__package__ = "pyroute2"

    def full(name: str) -> Any:
        base = os.path.join(module.__path__[0], name)
        if name.startswith("__") or os.path.exists(base + ".py") or os.path.isdir(base):
            raise AttributeError(name)  # a submodule: ``from pyroute2 import config`` imports it next
        del module.__getattr__  # type: ignore[attr-defined]
        exec(spec.loader.get_code("pyroute2"), module.__dict__)  # type: ignore[union-attr]
        return getattr(module, name)

    module.__getattr__ = full  # type: ignore[attr-defined]
    sys.modules["pyroute2"] = module


def load_messages() -> Any:
    """(ifinfmsg, ifaddrmsg, rtmsg), imported on first use."""
    global _messages
    if _messages is None:
        _light_pyroute2()
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        from pyroute2.netlink.rtnl.rtmsg import rtmsg

        _messages = (ifinfmsg, ifaddrmsg, rtmsg)
    return _messages


def attr(kind: int, value: bytes | str | int | list[bytes], *, u8: bool = False) -> bytes:
    """One rtattr: bytes as they are, str NUL-terminated, int as u32 (``u8``: one byte), a list of
    attributes nested."""
    if isinstance(value, list):
        payload = b"".join(value)
    elif isinstance(value, str):
        payload = value.encode() + b"\0"
    elif isinstance(value, int):
        payload = struct.pack("=B" if u8 else "=I", value)
    else:
        payload = value
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def ifinfo(index: int = 0, flags: int = 0, change: int = 0, attrs: tuple[bytes, ...] = ()) -> bytes:
    """An ifinfomsg (AF_UNSPEC) and its attributes."""
    return _IFINFO.pack(0, 0, index, flags, change) + b"".join(attrs)


def ifaddr(index: int, prefixlen: int, attrs: tuple[bytes, ...] = ()) -> bytes:
    return _IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index) + b"".join(attrs)


def route(
    dst_len: int, table: int, proto: int, scope: int, rtype: int, attrs: tuple[bytes, ...] = ()
) -> bytes:
    return _RTMSG.pack(socket.AF_INET, dst_len, 0, 0, table, proto, scope, rtype, 0) + b"".join(attrs)


def open_socket() -> socket.socket:
    """A NETLINK_ROUTE socket in the calling thread's network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((0, 0))
    return sock


class Netlink:
    """One rtnetlink socket; requests are strictly sequential (one outstanding at a time)."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock or open_socket()
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, msg_type: int, msg: Any, flags: int) -> int:
        self.seq += 1
        header = msg["header"]
        header["type"], header["flags"], header["sequence_number"] = msg_type, flags | NLM_F_REQUEST, self.seq
        header["pid"] = 0
        msg.encode()
        self.sock.send(msg.data)
        return self.seq

    def _replies(self, seq: int) -> Any:
        """Yield (type, payload bytes) of the replies to ``seq`` until the ack or NLMSG_DONE."""
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, mtype, _flags, mseq, _pid = _HDR.unpack_from(data, offset)
                if length < 16:
                    raise OSError(0, "malformed netlink reply")
                chunk = data[offset : offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue  # a late reply to an earlier request
                if mtype == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", chunk, 16)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return
                if mtype == NLMSG_DONE:
                    return
                yield mtype, chunk

    def _send_raw(self, msg_type: int, body: bytes, flags: int) -> int:
        self.seq += 1
        self.sock.send(_HDR.pack(16 + len(body), msg_type, flags | NLM_F_REQUEST, self.seq, 0) + body)
        return self.seq

    def send_raw(self, msg_type: int, body: bytes, flags: int = 0) -> None:
        """``request`` for a message encoded here (``ifinfo``, ``ifaddr``, ``route``)."""
        for _ in self._replies(self._send_raw(msg_type, body, flags | NLM_F_ACK)):
            pass

    def request(self, msg_type: int, msg: Any, flags: int = 0) -> None:
        """Send and wait for the kernel's ack; raise OSError(errno) on a negative ack."""
        seq = self._send(msg_type, msg, flags | NLM_F_ACK)
        for _ in self._replies(seq):
            pass

    def dump(self, msg_type: int, msg: Any, cls: Any) -> list[Any]:
        """A dump request; each reply decoded with ``cls``."""
        seq = self._send(msg_type, msg, NLM_F_DUMP)
        out = []
        for _mtype, chunk in self._replies(seq):
            reply = cls(chunk)
            reply.decode()
            out.append(reply)
        return out

    # -- the few queries the bridge code needs --------------------------------------------------------

    def _link(self, name: str) -> bytes | None:
        """The RTM_NEWLINK reply describing link ``name``; None if there is no such link."""
        seq = self._send_raw(RTM_GETLINK, ifinfo(attrs=(attr(IFLA_IFNAME, name),)), NLM_F_ACK)
        reply = None
        try:
            for _mtype, chunk in self._replies(seq):
                reply = chunk
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        return reply

    def link_index(self, name: str) -> int | None:
        reply = self._link(name)
        return None if reply is None else struct.unpack_from("=i", reply, 20)[0]  # ifinfomsg.ifi_index

    def link_mtu(self, name: str) -> int | None:
        """Link ``name``'s MTU; None if there is no such link."""
        reply = self._link(name)
        offset = 32  # the attributes follow the header and the ifinfomsg
        while reply is not None and offset + 4 <= len(reply):
            length, kind = struct.unpack_from("=HH", reply, offset)
            if length < 4:
                break
            if kind == IFLA_MTU and length >= 8:
                return struct.unpack_from("=I", reply, offset + 4)[0]
            offset += (length + 3) & ~3
        return None

    def links(self) -> list[dict[str, Any]]:
        """Every link: {"index", "name", "kind", "master", "flags"}."""
        ifinfmsg = load_messages()[0]
        out = []
        for link in self.dump(RTM_GETLINK, ifinfmsg(), ifinfmsg):
            info = link.get_attr("IFLA_LINKINFO")
            out.append({
                "index": link["index"], "name": link.get_attr("IFLA_IFNAME"), "flags": link["flags"],
                "kind": info.get_attr("IFLA_INFO_KIND") if info is not None else None,
                "master": link.get_attr("IFLA_MASTER") or 0,
            })  # fmt: skip
        return out

    def addresses(self) -> list[tuple[int, str, int]]:
        """(ifindex, IPv4 address, prefix length) of every IPv4 address."""
        ifaddrmsg = load_messages()[1]
        msg = ifaddrmsg()
        msg["family"] = socket.AF_INET
        return [(a["index"], a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                for a in self.dump(RTM_GETADDR, msg, ifaddrmsg)]  # fmt: skip

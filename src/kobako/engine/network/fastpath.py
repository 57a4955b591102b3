"""Container-to-container traffic on one network, straight from veth to veth (a TC eBPF program).

Frames between two containers of a network would cross the bridge, and on kernels with br_netfilter
(built in here) every bridged IPv4 frame also goes through the netfilter hooks once any NAT table exists
(kobako's masquerade and published ports): a second veth hop plus conntrack on every packet. Each
network gets a BPF hash map, container IPv4 address → ifindex of its host-side veth, and every host veth
of the network an ingress program (clsact, direct action): an IPv4 frame whose destination is in the
map goes to ``bpf_redirect_peer`` (into that container's eth0, in its namespace); anything else (ARP, the
gateway, published ports, other networks, the world) carries on through the bridge as before.

It is an accelerator only: where the kernel refuses (no BPF, an old kernel) nothing is attached and the
bridge carries everything. The map has no file in bpffs: the attached programs keep it alive, and its id is
recorded, with the boot it belongs to, in a root-only file of the run directory (``<run root>/fastpath/
<network id>``, written under a lock so racing setups share one map). A map is used only if that record
names it and it still bears the network's name: a name alone proves nothing where unprivileged users may
make BPF maps (they can read a network's id off its bridge's name), and an id is not handed out again
within a boot while the map lives. An entry goes when its endpoint is torn down; a stale one (after a
crash) points at a deleted ifindex and only drops frames to an address nobody holds. Same-network traffic
was accepted by kobako's rules anyway, so isolation between networks is unchanged.
"""

from __future__ import annotations

import os
import socket
import struct

from kobako import bpf
from kobako.bpf import insn as _insn
from kobako.engine.network import netlink as nl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.network.netlink import Netlink

# bpf(2) types and helpers (include/uapi/linux/bpf.h)
_MAP_TYPE_HASH, _PROG_TYPE_SCHED_CLS = 1, 3
_HELPER_MAP_LOOKUP, _HELPER_REDIRECT_PEER = 1, 155
_MAX_ENTRIES = 4096  # addresses per network (a /20 and then some)

# rtnetlink traffic control (include/uapi/linux/rtnetlink.h, pkt_sched.h, pkt_cls.h)
RTM_NEWQDISC, RTM_NEWTFILTER = 36, 44
_TC_H_CLSACT, _TC_H_INGRESS_PARENT = 0xFFFFFFF1, 0xFFFFFFF2
_TCA_KIND, _TCA_OPTIONS = 1, 2
_TCA_BPF_FD, _TCA_BPF_NAME, _TCA_BPF_FLAGS = 6, 7, 8
_TCA_BPF_FLAG_ACT_DIRECT = 1
_ETH_P_ALL_BE = 0x0300  # htons(ETH_P_ALL) as tcm_info's low half
_TCMSG = struct.Struct("=BxxxiIII")


def map_name(network_id: str) -> bytes:
    return ("kbfp" + network_id[:11]).encode()


def attach(host: Netlink, records: str, network_id: str, subnet: str, gateway: str, host_ifname: str,
           address: str) -> bool:  # fmt: skip
    """Make ``address`` reachable straight from the network's other containers and give the new veth
    the program (``subnet``/``gateway``: what it need not look up; ``records``: the directory of map
    records); False (and the bridge does the work) where the kernel refuses."""
    try:
        index = host.link_index(host_ifname)
        if index is None:
            return False
        fd = _ensure_map(records, network_id)
        try:
            _update(fd, address, index)
            prog = bpf.load(_PROG_TYPE_SCHED_CLS, program(fd, subnet, gateway), b"kobako_fastpath")
            try:
                _attach_ingress(host, index, prog)
            finally:
                os.close(prog)
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


def forget(records: str, network_id: str, address: str) -> None:
    """Drop ``address`` from the network's map, before its veth goes (best effort)."""
    fd = _open_map(records, network_id)
    if fd is None:
        return
    try:
        key = _key(address)
        bpf.call(bpf.MAP_DELETE_ELEM, struct.pack("<IIQ", fd, 0, bpf.address(key)))
    except OSError:
        pass
    finally:
        os.close(fd)


def drop(records: str, network_id: str) -> None:
    """Forget the network's map record (the network is gone; the map goes with its last program)."""
    try:
        os.unlink(os.path.join(records, network_id))
    except FileNotFoundError:
        pass


def recorded_networks(records: str) -> list[str]:
    """The network ids with a map record."""
    try:
        names = os.listdir(records)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if not n.startswith(".") and not n.endswith(".tmp"))


def entries(records: str, network_id: str) -> dict[str, int]:
    """The map's address → host ifindex entries (for `system check` and tests); {} without a map."""
    from kobako import libc

    out: dict[str, int] = {}
    fd = _open_map(records, network_id)
    if fd is None:
        return out
    try:
        previous = None  # GET_NEXT_KEY from no key: the first one
        while True:
            key, value = libc.byte_buffer(b"", 4), libc.byte_buffer(b"", 4)
            after = bpf.address(previous) if previous is not None else 0
            try:
                bpf.call(bpf.MAP_GET_NEXT_KEY, struct.pack("<IIQQ", fd, 0, after, bpf.address(key)))
            except OSError:
                break  # ENOENT: no more keys
            attr = struct.pack("<IIQQ", fd, 0, bpf.address(key), bpf.address(value))
            bpf.call(bpf.MAP_LOOKUP_ELEM, attr)
            out[socket.inet_ntoa(bytes(key))] = struct.unpack("<I", bytes(value))[0]
            previous = key
    finally:
        os.close(fd)
    return out


# --- the program -------------------------------------------------------------------------------------


def _imm(packed: bytes) -> int:
    """Four bytes in network order as the program loads them from the packet (in the machine's order),
    as the signed immediate an instruction carries."""
    return int(struct.unpack("=i", packed)[0])


def program(map_fd: int, subnet: str, gateway: str) -> bytes:
    """The ingress program: an IPv4 frame whose destination address is in the map is redirected to the
    peer of the veth the map names (TC_ACT_REDIRECT); anything else passes (TC_ACT_OK). Destinations
    outside ``subnet`` (the world, published-port replies) and the ``gateway`` skip the lookup."""
    base, _, bits = subnet.partition("/")
    mask = struct.pack("!I", (0xFFFFFFFF << (32 - int(bits or 32))) & 0xFFFFFFFF)
    network = bytes(a & b for a, b in zip(socket.inet_aton(base), mask, strict=True))
    r0, r1, r2, r3, r4, r5, r6, r10 = 0, 1, 2, 3, 4, 5, 6, 10
    body = [
        _insn(0x61, r2, r1, 76),  # r2 = skb->data
        _insn(0x61, r3, r1, 80),  # r3 = skb->data_end
        _insn(0xBF, r4, r2),  # r4 = r2
        _insn(0x07, r4, imm=34),  # r4 += 34 (Ethernet 14 + IPv4 header up to daddr)
        ("jgt", r4, r3),  # if r4 > r3: pass (too short to read)
        _insn(0x69, r5, r2, 12),  # r5 = ethertype (u16, as stored)
        ("jne", r5, 0x0008),  # if not IPv4 (0x0800, big-endian): pass
        _insn(0x61, r5, r2, 30),  # r5 = destination address
        _insn(0xBC, r6, r5),  # w6 = w5
        _insn(0x54, r6, imm=_imm(mask)),  # w6 &= netmask
        ("jne32", r6, _imm(network)),  # not in the subnet: pass
        ("jeq32", r5, _imm(socket.inet_aton(gateway))),  # the gateway: pass
        _insn(0x63, r10, r5, -4),  # *(u32 *)(fp - 4) = r5
        _insn(0x18, r1, 1, 0, map_fd),  # r1 = the map (ld_imm64, BPF_PSEUDO_MAP_FD)
        _insn(0x00),
        _insn(0xBF, r2, r10),  # r2 = fp
        _insn(0x07, r2, imm=-4),  # r2 = fp - 4: the key
        _insn(0x85, imm=_HELPER_MAP_LOOKUP),  # r0 = &value or NULL
        ("jeq0", r0, 0),  # not one of ours: pass
        _insn(0x61, r1, r0, 0),  # r1 = ifindex
        _insn(0xB7, r2, imm=0),  # r2 = flags
        _insn(0x85, imm=_HELPER_REDIRECT_PEER),  # r0 = TC_ACT_REDIRECT
        _insn(0x95),  # exit
    ]
    passing = len(body)  # then: r0 = TC_ACT_OK; exit
    out = []
    for i, item in enumerate(body):
        if isinstance(item, bytes):
            out.append(item)
            continue
        kind, reg, arg = item
        off = passing - i - 1
        code = {"jgt": 0x2D, "jne": 0x55, "jeq0": 0x15, "jne32": 0x56, "jeq32": 0x16}[kind]
        if kind == "jgt":
            out.append(_insn(code, reg, arg, off))  # jgt reg, src
        else:
            out.append(_insn(code, reg, 0, off, arg))  # jXX reg, imm (32: on the low halves)
    out += [_insn(0xB7, r0, imm=0), _insn(0x95)]
    return b"".join(out)


# --- the maps -------------------------------------------------------------------------------------------


def _key(address: str) -> object:
    from kobako import libc

    return libc.byte_buffer(socket.inet_aton(address), 4)


def _create_map(network_id: str) -> int:
    attr = struct.pack("<IIIIIII16s", _MAP_TYPE_HASH, 4, 4, _MAX_ENTRIES, 0, 0, 0, map_name(network_id))
    return bpf.call(bpf.MAP_CREATE, attr)[0]


_boot: list[str] = []  # this boot's id, read once


def _boot_id() -> str:
    if not _boot:
        with open("/proc/sys/kernel/random/boot_id") as f:
            _boot.append(f.read().strip())
    return _boot[0]


def _open_map(records: str, network_id: str) -> int | None:
    """An fd of the map the record names, if it is this boot's, still alive and still the network's."""
    try:
        with open(os.path.join(records, network_id)) as f:
            boot, _, map_id = f.read().strip().partition(" ")
        if boot != _boot_id() or not map_id.isdigit():
            return None
        fd = bpf.call(bpf.MAP_GET_FD_BY_ID, struct.pack("<I", int(map_id)))[0]
    except (OSError, ValueError):
        return None  # no record, or the map went with its last program
    try:
        if _name_of(fd) == map_name(network_id):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _ensure_map(records: str, network_id: str) -> int:
    """The network's map, made and recorded under the records' lock if there is none."""
    fd = _open_map(records, network_id)
    if fd is not None:
        return fd
    import fcntl

    os.makedirs(records, mode=0o700, exist_ok=True)
    lock = os.open(os.path.join(records, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fd = _open_map(records, network_id)  # made by a racing setup meanwhile
        if fd is not None:
            return fd
        fd = _create_map(network_id)
        try:
            from kobako.engine.containers import write_atomic

            write_atomic(os.path.join(records, network_id), f"{_boot_id()} {map_id(fd)}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        return fd
    finally:
        os.close(lock)  # releases the flock


def _map_info(fd: int) -> bytes:
    """struct bpf_map_info up to its name: type, id, key_size, value_size, max_entries, map_flags, name."""
    from kobako import libc

    info = libc.byte_buffer(b"", 96)
    bpf.call(bpf.OBJ_GET_INFO_BY_FD, struct.pack("<IIQ", fd, 96, bpf.address(info)))
    return bytes(info)


def map_id(fd: int) -> int:
    return struct.unpack_from("<I", _map_info(fd), 4)[0]


def _name_of(fd: int) -> bytes:
    return _map_info(fd)[24:40].rstrip(b"\0")


def _update(fd: int, address: str, index: int) -> None:
    from kobako import libc

    key, value = _key(address), libc.byte_buffer(struct.pack("<I", index), 4)
    bpf.call(bpf.MAP_UPDATE_ELEM, struct.pack("<IIQQQ", fd, 0, bpf.address(key), bpf.address(value), 0))


# --- traffic control ---------------------------------------------------------------------------------


def _attach_ingress(host: Netlink, index: int, prog_fd: int) -> None:
    clsact = _TCMSG.pack(socket.AF_UNSPEC, index, 0xFFFF0000, _TC_H_CLSACT, 0) + nl.attr(_TCA_KIND, "clsact")
    host.send_raw(RTM_NEWQDISC, clsact, nl.NLM_F_CREATE | nl.NLM_F_EXCL)
    options = [nl.attr(_TCA_BPF_FD, prog_fd), nl.attr(_TCA_BPF_NAME, "kobako_fastpath"),
               nl.attr(_TCA_BPF_FLAGS, _TCA_BPF_FLAG_ACT_DIRECT)]  # fmt: skip
    info = (1 << 16) | _ETH_P_ALL_BE  # priority 1, every protocol
    flt = _TCMSG.pack(socket.AF_UNSPEC, index, 0, _TC_H_INGRESS_PARENT, info)
    flt += nl.attr(_TCA_KIND, "bpf") + nl.attr(_TCA_OPTIONS, options)
    host.send_raw(RTM_NEWTFILTER, flt, nl.NLM_F_CREATE | nl.NLM_F_EXCL)

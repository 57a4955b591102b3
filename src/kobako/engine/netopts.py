"""Syntax checks for the network flags of ``run``: --network, -p, --add-host, --dns, --hostname.

The values are kept as strings for the networking code; here they are only validated, so a typo fails at
``kobako run`` with a message naming the flag instead of later inside the network setup.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument

_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.-")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def check_network(value: str) -> str:
    """none, host, bridge, a network NAME, or container:ID (share another container's stack)."""
    if value in ("none", "host", "bridge", "default"):
        return "bridge" if value == "default" else value
    kind, sep, ref = value.partition(":")
    if sep:
        if kind != "container" or not ref or any(c not in _NAME_REST for c in ref):
            raise InvalidArgument(
                f"invalid --network {value!r}: expected none, host, bridge, NAME or container:ID"
            )
        return value
    if not value or value[0] not in _NAME_FIRST or any(c not in _NAME_REST for c in value):
        raise InvalidArgument(f"invalid --network {value!r}: network names use [a-zA-Z0-9][a-zA-Z0-9_.-]")
    return value


def is_named(network: str) -> bool:
    """bridge or a user network: the modes kobako's networking sets up (not none, host or container:ID)."""
    return network not in ("none", "host") and not network.startswith("container:")


def is_ip(value: str) -> bool:
    import ipaddress  # only when a flag carries an address: it is not needed by most runs

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_dns(value: str) -> str:
    if not is_ip(value):
        raise InvalidArgument(f"invalid --dns {value!r}: not an IP address")
    return value


def check_hostname(value: str, flag: str = "--hostname") -> str:
    """RFC 1123 labels, at most 64 bytes in all (the kernel's limit for the UTS name)."""
    labels = value.split(".")
    if (
        not value
        or len(value) > 64
        or any(
            not label
            or len(label) > 63
            or label[0] == "-"
            or label[-1] == "-"
            or any(c not in _HOST_CHARS for c in label)
            for label in labels
        )
    ):
        raise InvalidArgument(
            f"invalid {flag} {value!r}: expected an RFC 1123 host name of at most 64 characters"
        )
    return value


def check_add_host(value: str) -> str:
    """``host:ip`` or ``host=ip`` (IPv6 addresses keep their colons); ``host-gateway`` is kept for networking."""
    sep = "=" if "=" in value else ":"
    host, _, ip = value.partition(sep)
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not host or not ip or (ip != "host-gateway" and not is_ip(ip)):
        raise InvalidArgument(f"invalid argument {value!r} for --add-host: expected HOST:IP")
    check_hostname(host, "--add-host host name")
    return value


def _port_range(text: str, value: str, allow_empty: bool = False) -> int:
    """Number of ports in ``80`` or ``8000-8010`` (0 for an empty host port)."""
    if not text:
        if allow_empty:
            return 0
        raise InvalidArgument(f"invalid --publish {value!r}: no port specified")
    lo, dash, hi = text.partition("-")
    if not lo.isdigit() or (dash and not hi.isdigit()):
        raise InvalidArgument(f"invalid --publish {value!r}: invalid port {text!r}")
    first, last = int(lo), int(hi) if dash else int(lo)
    if not (1 <= first <= last <= 65535) and not (allow_empty and first == last == 0):
        raise InvalidArgument(f"invalid --publish {value!r}: port {text!r} out of range 1-65535")
    return last - first + 1


def check_publish(value: str) -> str:
    """``[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`` with ranges; IPv6 addresses in brackets."""
    spec, _, proto = value.partition("/")
    if proto and proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid --publish {value!r}: protocol {proto!r} (tcp, udp or sctp)")
    ip = ""
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0 or spec[end + 1 : end + 2] != ":":
            raise InvalidArgument(f"invalid --publish {value!r}: bad IPv6 address")
        ip, spec = spec[1:end], spec[end + 2 :]
    parts = spec.split(":")
    if len(parts) > 3 or (ip and len(parts) > 2):
        raise InvalidArgument(f"invalid --publish {value!r}: too many colons")
    if len(parts) == 3:
        ip = parts.pop(0)
    if ip and not is_ip(ip):
        raise InvalidArgument(f"invalid --publish {value!r}: {ip!r} is not an IP address")
    container = _port_range(parts[-1], value)
    host = _port_range(parts[0], value, allow_empty=True) if len(parts) == 2 else 0
    if host and container != 1 and host != container:  # one container port may take any port of a range
        raise InvalidArgument(f"invalid --publish {value!r}: host and container port ranges differ in size")
    return value

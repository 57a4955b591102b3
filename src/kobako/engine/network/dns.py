"""Name resolution on user-defined networks: every container's /etc/hosts is kept current.

The choice (over an embedded DNS server on each bridge): kobako is daemonless, and a resolver per network
would be a process to start, supervise, restart after a crash and find when it leaks, plus a forwarding
path to the host's resolvers to get right. A hosts file needs none of that: it is exact the moment
``setup``/``connect``/``disconnect``/``teardown`` commits, costs one small write per affected container,
and the container's resolv.conf stays the host's (``--dns`` still overrides it), so names that are not
containers never pass through kobako. What it gives up: programs that cache /etc/hosts or speak DNS
directly (``nslookup``, ``dig``) do not see containers that join later, and a container on two networks sees
the names of both.

Layout of a container's hosts file: the engine writes localhost, its own name and ``--add-host`` lines
(etcfiles.write_hosts); below them this module owns one block between two marker lines::

    # kobako networks: begin (managed by kobako; rewritten on connect/disconnect)
    172.20.0.2	gateway-host          (--add-host NAME:host-gateway, resolved to the network's gateway)
    10.89.0.3	web web-alias 0123456789ab   (each container on the same user-defined networks)
    # kobako networks: end

The file is bind-mounted into the running container, so it is rewritten *in place* (a rename would leave
the container looking at the old inode). Rewrites of all files are serialised by one flock, and each
rewrite reads the database afresh, so the last writer always writes the current view.
"""

from __future__ import annotations

import fcntl
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.network.store import Database

BEGIN = "# kobako networks: begin (managed by kobako; rewritten on connect/disconnect)"
END = "# kobako networks: end"


def resolve_add_hosts(add_hosts: list[str], gateway: str) -> list[str]:
    """``--add-host`` entries whose address is ``host-gateway``, as hosts lines with the gateway address.

    Entries with a literal address are the engine's (etcfiles writes them)."""
    lines = []
    for entry in add_hosts:
        sep = "=" if "=" in entry else ":"
        host, _, ip = entry.partition(sep)
        if ip == "host-gateway" and gateway:
            lines.append(f"{gateway}\t{host}")
    return lines


def peer_lines(db: Database, container_id: str) -> list[str]:
    """hosts lines for every container (itself included) on the user-defined networks it is attached to."""
    lines: list[str] = []
    seen: set[str] = set()
    for own in db.endpoints(container_id=container_id):
        network = db.network_by_id(own.network_id)
        if network is None or not network.dns:
            continue
        for peer in db.endpoints(network_id=network.id):
            names = [n for n in dict.fromkeys([peer.name, *peer.aliases, peer.container_id[:12]]) if n]
            line = f"{peer.ip}\t{' '.join(names)}"
            if line not in seen:
                seen.add(line)
                lines.append(line)
    return lines


def block(extra: list[str], peers: list[str]) -> str:
    return "\n".join([BEGIN, *extra, *peers, END]) + "\n" if extra or peers else ""


def rewrite(path: str, text: str) -> bool:
    """Replace the managed block of ``path`` with ``text`` (which may be empty) in place; False when the file
    does not exist (a container without a hosts file, or one being removed)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return False
    with os.fdopen(fd, "r+") as f:
        old = f.read()
        start = old.find(BEGIN)
        if start >= 0:
            end = old.find(END, start)
            tail = old[end + len(END) :].lstrip("\n") if end >= 0 else ""
            head = old[:start]
        else:
            head, tail = old, ""
        if head and not head.endswith("\n"):
            head += "\n"
        new = head + text + tail
        if new != old:
            # Write over the old bytes, then cut: a reader sees old or new lines, never an empty file.
            f.seek(0)
            f.write(new)
            f.truncate()
    return True


class _Lock:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Lock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing drops the lock


def refresh(db: Database, container_ids: set[str]) -> None:
    """Rewrite the managed block of each container in ``container_ids`` that has a hosts file."""
    if not container_ids:
        return
    with _Lock(os.path.join(db.dir, "hosts.lock")):
        for cid in sorted(container_ids):
            sandbox = db.sandbox(cid)
            if sandbox is None or not sandbox[1]:
                continue
            rewrite(sandbox[1], block(sandbox[2], peer_lines(db, cid)))


def neighbours(db: Database, network_ids: set[str]) -> set[str]:
    """Containers attached to any of ``network_ids`` (whose hosts files a change there affects)."""
    out: set[str] = set()
    for nid in network_ids:
        out.update(ep.container_id for ep in db.endpoints(network_id=nid))
    return out


def nameservers(dns: list[str], resolv_conf: str) -> list[str]:
    """The resolvers a container uses: ``--dns`` or the host's, without loopback ones (unreachable from a
    container's namespace); ``resolv_conf`` may be "" (none: tests give their own file or nothing)."""
    if dns:
        return list(dns)
    found = []
    try:
        with open(resolv_conf) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    found.append(fields[1])
    except OSError:
        return []
    return [ns for ns in found if not ns.startswith("127.") and ns != "::1"]

"""``kobako network create|ls|inspect|rm|prune|connect|disconnect``: docker's verbs over
:class:`kobako.engine.network.service.NetworkService`."""

from __future__ import annotations

import sys

from kobako.cli.flags import HELP, Flag, Flags, parse_labels, print_usage
from kobako.errors import InvalidArgument, KobakoError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.network.service import NetworkService


def _service() -> NetworkService:
    from kobako.engine.network.service import NetworkService

    return NetworkService()


CREATE = Flags(
    Flag(
        "subnet",
        "--subnet",
        value=True,
        help="IPv4 subnet in CIDR form (default: a free /24 of 10.89.0.0/16)",
    ),
    Flag("gateway", "--gateway", value=True, help="gateway address in the subnet (default: its first)"),
    Flag("internal", "--internal", help="no traffic in or out of the network, except between its containers"),
    Flag("label", "--label", value=True, many=True, help="set metadata on the network (K=V)"),
    Flag(
        "opt",
        "-o",
        "--opt",
        value=True,
        many=True,
        help="driver option K=V: mtu (or com.docker.network.driver.mtu), default 65535 inside the host",
    ),
    Flag("driver", "-d", "--driver", value=True, default="bridge", help='network driver (only "bridge")'),
    HELP,
)


def cmd_create(argv: list[str]) -> int:
    opts, rest = CREATE.parse(argv)
    if opts.help:
        return print_usage("network create [OPTIONS] NETWORK", CREATE)
    if len(rest) != 1:
        raise InvalidArgument('"kobako network create" requires exactly 1 argument')
    if opts.driver != "bridge":
        raise InvalidArgument(f"network driver {opts.driver!r} is not supported (only bridge)")
    svc = _service()
    try:
        net = svc.create(rest[0], subnet=opts.subnet, gateway=opts.gateway, internal=bool(opts.internal),
                         labels=parse_labels(opts.label), options=parse_labels(opts.opt, "--opt"))  # fmt: skip
    finally:
        svc.close()
    print(net.id)
    return 0


LS = Flags(
    Flag("quiet", "-q", "--quiet", help="only display network IDs"),
    Flag("format", "--format", value=True, help="json: one JSON object per network"),
    Flag("no_trunc", "--no-trunc", help="do not truncate the output"),
    HELP,
)


def cmd_ls(argv: list[str]) -> int:
    opts, rest = LS.parse(argv)
    if opts.help:
        return print_usage("network ls [OPTIONS]", LS)
    if rest:
        raise InvalidArgument(f"network ls takes no arguments, got {rest[0]!r}")
    if opts.format not in (None, "json", "table"):
        raise InvalidArgument(f"unsupported --format {opts.format!r}: use json or table")
    svc = _service()
    try:
        svc.ensure_default()
        networks = svc.list()
    finally:
        svc.close()
    out = sys.stdout
    short = (lambda i: i) if opts.no_trunc else (lambda i: i[:12])
    if opts.quiet:
        out.write("".join(short(n.id) + "\n" for n in networks))
    elif opts.format == "json":
        from kobako.engine.network.store import labels_text
        from kobako.oci import jsoncodec

        for n in networks:
            row = {"CreatedAt": n.created, "Driver": n.driver, "ID": short(n.id), "IPv6": "false",
                   "Internal": str(n.internal).lower(), "Labels": labels_text(n.labels), "Name": n.name,
                   "Scope": "local", "Subnet": n.subnet}  # fmt: skip
            out.write(jsoncodec.dumps(row) + "\n")
    else:
        from kobako.cli.system import print_table

        print_table(
            ["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
            [[short(n.id), n.name, n.driver, "local"] for n in networks],
        )
    return 0


INSPECT = Flags(Flag("format", "-f", "--format", value=True, help="a Go-template subset, e.g. {{.Id}}"), HELP)


def cmd_inspect(argv: list[str]) -> int:
    opts, names = INSPECT.parse(argv)
    if opts.help:
        return print_usage("network inspect NETWORK [NETWORK...]", INSPECT)
    if not names:
        raise InvalidArgument('"kobako network inspect" requires at least 1 argument')
    svc = _service()
    found, code = [], 0
    try:
        for name in names:
            try:
                found.append(svc.inspect(name))
            except KobakoError as exc:
                sys.stderr.write(f"kobako: {exc}\n")
                code = 1
    finally:
        svc.close()
    if opts.format:
        from kobako.cli.system import render

        for item in found:
            print(render(opts.format, item))
    else:
        import json

        print(json.dumps(found, indent=4))
    return code


RM = Flags(
    Flag("force", "-f", "--force", help="disconnect containers still attached, and ignore missing networks"),
    HELP,
)


def cmd_rm(argv: list[str]) -> int:
    opts, names = RM.parse(argv)
    if opts.help:
        return print_usage("network rm [OPTIONS] NETWORK [NETWORK...]", RM)
    if not names:
        raise InvalidArgument('"kobako network rm" requires at least 1 argument')
    from kobako.errors import NotFound

    svc = _service()
    code = 0
    try:
        for name in names:
            try:
                svc.remove(name, force=bool(opts.force))
            except NotFound as exc:
                if not opts.force:
                    sys.stderr.write(f"kobako: {exc}\n")
                    code = 1
                continue
            except KobakoError as exc:
                sys.stderr.write(f"kobako: {exc}\n")
                code = 1
                continue
            print(name)
    finally:
        svc.close()
    return code


PRUNE = Flags(Flag("force", "-f", "--force", help="do not prompt for confirmation"), HELP)


def cmd_prune(argv: list[str]) -> int:
    opts, rest = PRUNE.parse(argv)
    if opts.help:
        return print_usage("network prune [OPTIONS]", PRUNE)
    if rest:
        raise InvalidArgument(f"network prune takes no arguments, got {rest[0]!r}")
    if not opts.force:
        from kobako.cli.system import confirm

        if not confirm("WARNING! This will remove all custom networks not used by at least one container."):
            return 0
    svc = _service()
    try:
        removed = svc.prune()
    finally:
        svc.close()
    if removed:
        print("Deleted Networks:\n" + "\n".join(removed))
    return 0


CONNECT = Flags(
    Flag("ip", "--ip", value=True, help="IPv4 address for the container on this network"),
    Flag("alias", "--alias", value=True, many=True, help="another name for the container on this network"),
    HELP,
)


def _container(ref: str) -> tuple[str, str]:
    """(id, name) from the engine's records."""
    from kobako.engine.containers import ContainerStore

    record = ContainerStore().get(ref)
    return record.id, record.name


def cmd_connect(argv: list[str]) -> int:
    opts, rest = CONNECT.parse(argv)
    if opts.help:
        return print_usage("network connect [OPTIONS] NETWORK CONTAINER", CONNECT)
    if len(rest) != 2:
        raise InvalidArgument('"kobako network connect" requires exactly 2 arguments')
    cid, name = _container(rest[1])
    svc = _service()
    try:
        svc.connect(rest[0], cid, ip=opts.ip, aliases=list(opts.alias), name=name)
    finally:
        svc.close()
    return 0


DISCONNECT = Flags(
    Flag("force", "-f", "--force", help="do not fail when the container is not connected"), HELP
)


def cmd_disconnect(argv: list[str]) -> int:
    opts, rest = DISCONNECT.parse(argv)
    if opts.help:
        return print_usage("network disconnect [OPTIONS] NETWORK CONTAINER", DISCONNECT)
    if len(rest) != 2:
        raise InvalidArgument('"kobako network disconnect" requires exactly 2 arguments')
    cid, _name = _container(rest[1])
    svc = _service()
    try:
        svc.disconnect(rest[0], cid, force=bool(opts.force))
    finally:
        svc.close()
    return 0

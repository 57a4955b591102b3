"""Registry verbs: pull, push, login, logout (client) and registry serve / registry gc (server)."""

from __future__ import annotations

import os
import sys

from kobako.cli.flags import Flag, Flags
from kobako.cli.system import parse, service
from kobako.errors import InvalidArgument, NotFound

_TLS = Flag("tls_verify", "--tls-verify", help="require HTTPS with a verified certificate (=false: insecure)")

_PULL = Flags(
    Flag("platform", "--platform", value=True, help="OS/ARCH[/VARIANT] to pull from an index"),
    Flag("quiet", "-q", "--quiet", help="print only the image name"),
    _TLS,
)


def cmd_pull(argv: list[str]) -> int:
    parsed = parse(
        _PULL, argv, "kobako pull [--platform OS/ARCH] [-q] [--tls-verify=false] NAME[:TAG|@DIGEST]"
    )
    if parsed is None:
        return 0
    opts, args = parsed
    if len(args) != 1:
        raise InvalidArgument('"kobako pull" requires exactly 1 argument: NAME[:TAG|@DIGEST]')
    from kobako.registry.client.progress import for_terminal
    from kobako.registry.client.pull import pull

    with for_terminal(bool(opts["quiet"])) as progress:
        pulled = pull(service(), args[0], platform=opts["platform"], tls_verify=opts["tls_verify"],
                      progress=progress)  # fmt: skip
    print(pulled.name)
    return 0


_PUSH = Flags(Flag("quiet", "-q", "--quiet", help="print only the digest"), _TLS)


def cmd_push(argv: list[str]) -> int:
    parsed = parse(_PUSH, argv, "kobako push [-q] [--tls-verify=false] IMAGE [DESTINATION]")
    if parsed is None:
        return 0
    opts, args = parsed
    if not 1 <= len(args) <= 2:
        raise InvalidArgument('"kobako push" requires 1 or 2 arguments: IMAGE [DESTINATION]')
    from kobako.registry.client.progress import for_terminal
    from kobako.registry.client.push import push

    with for_terminal(bool(opts["quiet"])) as progress:
        pushed = push(service(), args[0], args[1] if len(args) == 2 else None, tls_verify=opts["tls_verify"],
                      progress=progress)  # fmt: skip
    if opts["quiet"]:
        print(pushed.digest)
    return 0


_LOGIN = Flags(
    Flag("username", "-u", "--username", value=True, help="user name"),
    Flag("password", "-p", "--password", value=True, help="password (prefer --password-stdin)"),
    Flag("password_stdin", "--password-stdin", help="read the password from stdin"),
    _TLS,
)


def _registry_arg(args: list[str], verb: str) -> str:
    if len(args) > 1:
        raise InvalidArgument(f'"kobako {verb}" accepts at most 1 argument: [REGISTRY]')
    from kobako.registry.client.hosts import normalize_host

    host = normalize_host(args[0]) if args else "docker.io"
    if not host:
        raise InvalidArgument(f"invalid registry {args[0]!r}")
    return host


def cmd_login(argv: list[str]) -> int:
    parsed = parse(_LOGIN, argv, "kobako login [-u USER] [-p PASS | --password-stdin] [REGISTRY]")
    if parsed is None:
        return 0
    opts, args = parsed
    host = _registry_arg(args, "login")
    user, password = opts["username"], opts["password"]
    if opts["password_stdin"]:
        if password:
            raise InvalidArgument("--password and --password-stdin are mutually exclusive")
        if not user:
            raise InvalidArgument("--password-stdin needs --username")
        password = sys.stdin.read().rstrip("\r\n")
    if not user:
        sys.stderr.write("Username: ")
        sys.stderr.flush()
        user = sys.stdin.readline().strip()
    if not password:
        import getpass

        password = getpass.getpass("Password: ")
    if not user or not password:
        raise InvalidArgument("a user name and a password are required")
    from kobako.registry.client.auth import save_credentials
    from kobako.registry.client.hosts import endpoints, load_config
    from kobako.registry.client.remote import Remote

    remote = Remote(endpoints(host, load_config(), opts["tls_verify"], pull=False)[-1], credentials=(user, password),
                    domain=host)  # fmt: skip
    try:
        remote.request("GET", "/v2/", scopes=[], ok=(200,), what=f"login to {host}").close()
    finally:
        remote.close()
    path = save_credentials(host, user, password)
    if opts["password"]:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    print(f"Login Succeeded (credentials in {path})")
    return 0


def cmd_logout(argv: list[str]) -> int:
    parsed = parse(Flags(), argv, "kobako logout [REGISTRY]")
    if parsed is None:
        return 0
    _opts, args = parsed
    host = _registry_arg(args, "logout")
    from kobako.registry.client.auth import remove_credentials

    if not remove_credentials(host):
        raise NotFound(f"not logged in to {host}")
    print(f"Removing login credentials for {host}")
    return 0


def _default_root() -> str:
    from kobako import paths

    return os.path.join(paths.state_root(), "registry")


_SERVE = Flags(
    Flag("addr", "--addr", value=True, default="127.0.0.1:5000", help="HOST:PORT to listen on"),
    Flag("root", "--root", value=True, help="storage directory (default <state root>/registry)"),
    Flag("htpasswd", "--htpasswd", value=True, help="htpasswd file with bcrypt hashes: require basic auth"),
    Flag("tls_cert", "--tls-cert", value=True, help="serve HTTPS with this certificate (PEM)"),
    Flag("tls_key", "--tls-key", value=True, help="private key of --tls-cert (PEM)"),
    Flag("anonymous_read", "--anonymous-read", help="with --htpasswd: let anyone pull"),
    Flag(
        "delete", "--delete", default=True, help="allow deleting manifests and blobs (--delete=false: refuse)"
    ),
    Flag("log_level", "--log-level", value=True, default="warning", help="debug, info, warning, error"),
)


def cmd_serve(argv: list[str]) -> int:
    parsed = parse(_SERVE, argv, "kobako registry serve [--addr HOST:PORT] [--root DIR] [OPTIONS]")
    if parsed is None:
        return 0
    opts, args = parsed
    if args:
        raise InvalidArgument('"kobako registry serve" accepts no arguments')
    if bool(opts["tls_cert"]) != bool(opts["tls_key"]):
        raise InvalidArgument("--tls-cert and --tls-key go together")
    if opts["anonymous_read"] and not opts["htpasswd"]:
        raise InvalidArgument("--anonymous-read only makes sense with --htpasswd")
    for flag in ("htpasswd", "tls_cert", "tls_key"):
        if opts[flag] and not os.path.isfile(opts[flag]):
            raise NotFound(f"--{flag.replace('_', '-')}: no such file {opts[flag]}")
    from kobako.registry.server.app import serve

    serve(opts["addr"], opts["root"] or _default_root(), htpasswd=opts["htpasswd"], tls_cert=opts["tls_cert"],
          tls_key=opts["tls_key"], anonymous_read=bool(opts["anonymous_read"]), delete=bool(opts["delete"]),
          log_level=str(opts["log_level"]).lower())  # fmt: skip
    return 0


_GC = Flags(
    Flag("root", "--root", value=True, help="storage directory (default <state root>/registry)"),
    Flag("dry_run", "--dry-run", help="only report what would be removed"),
    Flag(
        "grace", "--grace", value=True, default="600", help="keep blobs written or linked this recently (s)"
    ),
)


def cmd_gc(argv: list[str]) -> int:
    parsed = parse(_GC, argv, "kobako registry gc [--root DIR] [--dry-run] [--grace SECONDS]")
    if parsed is None:
        return 0
    opts, args = parsed
    if args:
        raise InvalidArgument('"kobako registry gc" accepts no arguments')
    try:
        grace = float(opts["grace"])
    except ValueError:
        raise InvalidArgument(f"--grace: not a number of seconds: {opts['grace']!r}") from None
    root = opts["root"] or _default_root()
    if not os.path.isdir(root):
        raise NotFound(f"no registry storage at {root}")
    from kobako.cli.system import human_size
    from kobako.registry.server.gc import collect

    result = collect(root, grace=grace, dry_run=bool(opts["dry_run"]))
    for err in result.errors:
        sys.stderr.write(f"kobako: gc skipped the sweep: {err}\n")
    if result.errors:
        return 1
    verb = "would remove" if opts["dry_run"] else "removed"
    for d in result.blobs:
        print(f"{verb} blob {d}")
    print(f"{verb} {len(result.blobs)} blobs ({human_size(result.bytes)}), {len(result.links)} links, "
          f"{len(result.uploads)} stale uploads")  # fmt: skip
    return 0

"""``kobako volume create|ls|inspect|rm|prune``: docker's verbs over :class:`kobako.engine.volumes.VolumeStore`."""

from __future__ import annotations

import os
import sys

from kobako.cli.flags import HELP, Flag, Flags, parse_labels, print_usage
from kobako.errors import InvalidArgument, KobakoError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.volumes import VolumeStore


def _store() -> VolumeStore:
    from kobako.engine.volumes import VolumeStore

    return VolumeStore()


CREATE = Flags(
    Flag("label", "-l", "--label", value=True, many=True, help="set metadata on the volume (K=V)"),
    Flag("driver", "-d", "--driver", value=True, default="local", help='volume driver (only "local")'),
    Flag("opt", "-o", "--opt", value=True, many=True, help="driver options (none supported yet)"),
    Flag("name", "--name", value=True, help="volume name"),
    HELP,
)


def cmd_create(argv: list[str]) -> int:
    opts, rest = CREATE.parse(argv)
    if opts.help:
        return print_usage("volume create [OPTIONS] [VOLUME]", CREATE)
    if len(rest) > 1 or (rest and opts.name and rest[0] != opts.name):
        raise InvalidArgument("volume create takes at most one VOLUME name")
    driver_opts = dict(item.partition("=")[::2] for item in opts.opt)
    vol = _store().create(opts.name or (rest[0] if rest else None), labels=parse_labels(opts.label),
                          driver=opts.driver, opts=driver_opts)  # fmt: skip
    print(vol.name)
    return 0


LS = Flags(
    Flag("quiet", "-q", "--quiet", help="only display volume names"),
    Flag("format", "--format", value=True, help="json: one JSON object per volume"),
    HELP,
)


def cmd_ls(argv: list[str]) -> int:
    opts, rest = LS.parse(argv)
    if opts.help:
        return print_usage("volume ls [OPTIONS]", LS)
    if rest:
        raise InvalidArgument(f"volume ls takes no arguments, got {rest[0]!r}")
    if opts.format not in (None, "json", "table"):
        raise InvalidArgument(f"unsupported --format {opts.format!r}: use json or table")
    volumes = _store().list()
    out = sys.stdout
    if opts.quiet:
        out.write("".join(v.name + "\n" for v in volumes))
    elif opts.format == "json":
        from kobako.oci import jsoncodec

        for v in volumes:
            row = {"Driver": v.driver, "Labels": ",".join(f"{k}={val}" for k, val in v.labels.items()),
                   "Mountpoint": v.mountpoint, "Name": v.name, "Scope": "local"}  # fmt: skip
            out.write(jsoncodec.dumps(row) + "\n")
    else:
        out.write(f"{'DRIVER':<10}VOLUME NAME\n")
        out.write("".join(f"{v.driver:<10}{v.name}\n" for v in volumes))
    return 0


INSPECT = Flags(Flag("format", "-f", "--format", value=True, help="(only the default JSON output)"), HELP)


def cmd_inspect(argv: list[str]) -> int:
    opts, names = INSPECT.parse(argv)
    if opts.help:
        return print_usage("volume inspect VOLUME [VOLUME...]", INSPECT)
    if not names:
        raise InvalidArgument('"kobako volume inspect" requires at least 1 argument')
    import json

    store = _store()
    found, code = [], 0
    for name in names:
        try:
            found.append(store.inspect(name))
        except KobakoError as exc:
            sys.stderr.write(f"kobako: {exc}\n")
            code = 1
    print(json.dumps(found, indent=4))
    return code


RM = Flags(Flag("force", "-f", "--force", help="ignore volumes that do not exist"), HELP)


def cmd_rm(argv: list[str]) -> int:
    opts, names = RM.parse(argv)
    if opts.help:
        return print_usage("volume rm [OPTIONS] VOLUME [VOLUME...]", RM)
    if not names:
        raise InvalidArgument('"kobako volume rm" requires at least 1 argument')
    store = _store()
    code = 0
    for name in names:
        try:
            store.remove(name, force=bool(opts.force))
        except KobakoError as exc:
            sys.stderr.write(f"kobako: {exc}\n")
            code = 1
            continue
        print(name)
    return code


PRUNE = Flags(Flag("force", "-f", "--force", help="do not prompt for confirmation"), HELP)


def cmd_prune(argv: list[str]) -> int:
    opts, rest = PRUNE.parse(argv)
    if opts.help:
        return print_usage("volume prune [OPTIONS]", PRUNE)
    if rest:
        raise InvalidArgument(f"volume prune takes no arguments, got {rest[0]!r}")
    if not opts.force:
        sys.stdout.write(
            "WARNING! This will remove all local volumes not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    store = _store()
    sizes = {v.name: _size(v.mountpoint) for v in store.list()}
    removed = store.prune()
    if removed:
        print("Deleted Volumes:\n" + "\n".join(removed) + "\n")
    print(f"Total reclaimed space: {_human(sum(sizes.get(n, 0) for n in removed))}")
    return 0


def _size(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.4g}{unit}"
        size /= 1000
    return f"{size:.4g}TB"

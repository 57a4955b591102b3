"""Image verbs: import, load, save, images, tag, rmi, history, image inspect, image prune (docker's output)."""

from __future__ import annotations

import os
import sys

from kobako.cli.flags import Flag, Flags
from kobako.cli.system import ago, confirm, human_size, parse, print_table, render, service
from kobako.errors import InvalidArgument, KobakoError, NotFound

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from kobako.images.service import Image


def short_id(image_id: str) -> str:
    return image_id.partition(":")[2][:12]


# -- import / load / save -------------------------------------------------------------------------------------

_IMPORT = Flags(
    Flag(
        "change",
        "-c",
        "--change",
        value=True,
        many=True,
        help="Dockerfile instruction to apply (CMD, ENV, ...)",
    ),
    Flag("message", "-m", "--message", value=True, default="", help="commit message for the history"),
    Flag("platform", "--platform", value=True, help="accepted for compatibility (only the host's)"),
)


def cmd_import(argv: list[str]) -> int:
    parsed = parse(_IMPORT, argv, "kobako import [OPTIONS] FILE|- [REPOSITORY[:TAG]]")
    if parsed is None:
        return 0
    opts, args = parsed
    if not 1 <= len(args) <= 2:
        raise InvalidArgument('"kobako import" requires 1 or 2 arguments: FILE|- [REPOSITORY[:TAG]]')
    from kobako.images.importer import import_rootfs

    source, name = args[0], (args[1] if len(args) == 2 else None)
    svc = service()
    if source == "-":
        image_id = import_rootfs(svc, sys.stdin.buffer, name, opts["change"], opts["message"], "-")
    else:
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise NotFound(f"cannot open {source}: {exc.strerror}") from None
        with f:
            image_id = import_rootfs(svc, f, name, opts["change"], opts["message"], os.path.basename(source))
    print(image_id)
    return 0


_LOAD = Flags(
    Flag("input", "-i", "--input", value=True, help="read from a tar archive file instead of stdin"),
    Flag("quiet", "-q", "--quiet", help="suppress the load output"),
)


def cmd_load(argv: list[str]) -> int:
    parsed = parse(_LOAD, argv, "kobako load [-i FILE] [-q]")
    if parsed is None:
        return 0
    opts, args = parsed
    if args:
        raise InvalidArgument('"kobako load" accepts no arguments (use -i FILE)')
    from kobako.images.loader import load
    from kobako.oci.reference import familiar

    svc = service()
    if opts["input"]:
        try:
            f = open(opts["input"], "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise NotFound(f"cannot open {opts['input']}: {exc.strerror}") from None
        with f:
            loaded = load(svc, f)
    else:
        if sys.stdin.isatty():
            raise InvalidArgument("requested load from stdin, but stdin is a terminal: use -i FILE or a pipe")
        loaded = load(svc, sys.stdin.buffer)
    if not opts["quiet"]:
        for item in loaded:
            for name in item.names:
                print(f"Loaded image: {familiar(name)}")
            if not item.names:
                print(f"Loaded image ID: {item.image_id}")
    return 0


_SAVE = Flags(
    Flag("output", "-o", "--output", value=True, help="write to a file instead of stdout"),
    Flag("format", "--format", value=True, default="docker-archive", help="docker-archive or oci-archive"),
)


def cmd_save(argv: list[str]) -> int:
    parsed = parse(_SAVE, argv, "kobako save [-o FILE] [--format docker-archive|oci-archive] IMAGE...")
    if parsed is None:
        return 0
    opts, args = parsed
    if not args:
        raise InvalidArgument('"kobako save" requires at least 1 image')
    from kobako.images.saver import FORMATS, save
    from kobako.oci.reference import normalize

    if opts["format"] not in FORMATS:
        raise InvalidArgument(f"unknown format {opts['format']!r}: want one of {', '.join(FORMATS)}")
    svc = service()
    items: list[tuple[Image, list[str]]] = []
    for ref in args:
        image = svc.resolve(ref)
        try:
            name = normalize(ref)
        except InvalidArgument:
            name = ""
        names = [name] if name in image.names else []
        for item in items:
            if item[0].id == image.id:
                item[1].extend(n for n in names if n not in item[1])
                break
        else:
            items.append((image, names))
    output = opts["output"]
    if not output or output == "-":
        if sys.stdout.isatty():
            raise InvalidArgument("cowardly refusing to save to a terminal: use the -o flag or redirect")
        sys.stdout.flush()
        save(svc, items, sys.stdout.buffer, opts["format"])
        sys.stdout.buffer.flush()
        return 0
    tmp = f"{output}.kobako-{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            save(svc, items, f, opts["format"])
        os.replace(tmp, output)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return 0


# -- images / tag / rmi -----------------------------------------------------------------------------------------

_IMAGES = Flags(
    Flag("all", "-a", "--all", help="show all images (no intermediate images exist: same as default)"),
    Flag("quiet", "-q", "--quiet", help="only show image IDs"),
    Flag(
        "format", "--format", value=True, help="'json', 'table', or a Go template such as '{{.Repository}}'"
    ),
    Flag("no_trunc", "--no-trunc", help="do not truncate IDs"),
    Flag("digests", "--digests", help="show digests"),
)


def cmd_images(argv: list[str]) -> int:
    parsed = parse(_IMAGES, argv, "kobako images [OPTIONS] [REPOSITORY[:TAG]]")
    if parsed is None:
        return 0
    opts, args = parsed
    if len(args) > 1:
        raise InvalidArgument('"kobako images" accepts at most one REPOSITORY[:TAG]')
    from kobako.images.inspect import list_rows

    rows = list_rows(service().list_images(), bool(opts["no_trunc"]))
    for row in rows:
        row["CreatedSince"] = ago(row.pop("Created"))
        row["Size"] = row["VirtualSize"] = human_size(row["Size"])
    if args:
        want = args[0]
        rows = [r for r in rows if want in (r["Repository"], f"{r['Repository']}:{r['Tag']}")]
    if opts["quiet"]:
        for image_id in dict.fromkeys(r["ID"] for r in rows):
            print(image_id)
        return 0
    fmt = opts["format"]
    if fmt and fmt != "table":
        from kobako.oci import jsoncodec

        table = fmt.startswith("table ")
        for row in rows:
            print(jsoncodec.dumps(row) if fmt == "json" else render(fmt[6:] if table else fmt, row))
        return 0
    header = ["REPOSITORY", "TAG", *(["DIGEST"] if opts["digests"] else []), "IMAGE ID", "CREATED", "SIZE"]
    table_rows = [[r["Repository"], r["Tag"], *([r["Digest"]] if opts["digests"] else []), r["ID"],
                   r["CreatedSince"], r["Size"]] for r in rows]  # fmt: skip
    print_table(header, table_rows)
    return 0


def cmd_tag(argv: list[str]) -> int:
    parsed = parse(Flags(), argv, "kobako tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")
    if parsed is None:
        return 0
    _, args = parsed
    if len(args) != 2:
        raise InvalidArgument('"kobako tag" requires exactly 2 arguments')
    from kobako.images.store import target_of
    from kobako.oci.reference import normalize

    svc = service()
    image = svc.resolve(args[0])
    name = normalize(args[1])
    if "@" in name:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {args[1]}")
    recs = svc.store.by_id(image.id)
    svc.store.set(name, target_of(recs[0]), image.id)
    return 0


_RMI = Flags(
    Flag("force", "-f", "--force", help="force removal of the image"),
    Flag("no_prune", "--no-prune", help="accepted for compatibility"),
)


def cmd_rmi(argv: list[str]) -> int:
    parsed = parse(_RMI, argv, "kobako rmi [-f] IMAGE...")
    if parsed is None:
        return 0
    opts, args = parsed
    if not args:
        raise InvalidArgument('"kobako rmi" requires at least 1 argument')
    from kobako.images.remove import remove

    svc = service()
    failed, deleted = False, False
    for ref in args:
        try:
            lines, gone = remove(svc, ref, bool(opts["force"]))
        except KobakoError as exc:
            sys.stderr.write(f"kobako: {exc}\n")
            failed = True
            continue
        deleted = deleted or gone
        for line in lines:
            print(line)
    if deleted:
        svc.gc()
    return 1 if failed else 0


# -- history / inspect / prune ----------------------------------------------------------------------------------

_HISTORY = Flags(
    Flag("human", "-H", "--human", value=False, help="human-readable sizes and dates (default)"),
    Flag("no_trunc", "--no-trunc", help="do not truncate output"),
    Flag("quiet", "-q", "--quiet", help="only show image IDs"),
    Flag("format", "--format", value=True, help="'json' or a Go template"),
)


def cmd_history(argv: list[str]) -> int:
    parsed = parse(_HISTORY, argv, "kobako history [OPTIONS] IMAGE")
    if parsed is None:
        return 0
    opts, args = parsed
    if len(args) != 1:
        raise InvalidArgument('"kobako history" requires exactly 1 argument')
    from kobako.images.inspect import history

    rows = history(service().resolve(args[0]))
    trunc = not opts["no_trunc"]
    if opts["quiet"]:
        for r in rows:
            print(short_id(r["id"]) if trunc and r["id"] != "<missing>" else r["id"])
        return 0
    out = []
    for r in rows:
        by = r["created_by"].replace("\t", " ")
        if trunc and len(by) > 45:
            by = by[:44] + "…"
        out.append({"ID": short_id(r["id"]) if trunc and r["id"] != "<missing>" else r["id"],
                    "CreatedSince": ago(r["created"]), "CreatedBy": by, "Size": human_size(r["size"]),
                    "Comment": r["comment"]})  # fmt: skip
    if opts["format"]:
        from kobako.oci import jsoncodec

        for row in out:
            print(jsoncodec.dumps(row) if opts["format"] == "json" else render(opts["format"], row))
        return 0
    print_table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                [[r["ID"], r["CreatedSince"], r["CreatedBy"], r["Size"], r["Comment"]] for r in out])  # fmt: skip
    return 0


_INSPECT = Flags(Flag("format", "-f", "--format", value=True, help="Go template such as '{{.Id}}'"))


def cmd_image_inspect(argv: list[str]) -> int:
    parsed = parse(_INSPECT, argv, "kobako image inspect [-f FORMAT] IMAGE...")
    if parsed is None:
        return 0
    opts, args = parsed
    if not args:
        raise InvalidArgument('"kobako image inspect" requires at least 1 argument')
    import json

    from kobako.images.inspect import inspect

    svc = service()
    from kobako.images.unpack import snapshotter_kind

    driver = snapshotter_kind(svc.root)
    found, failed = [], False
    for ref in args:
        try:
            found.append(inspect(svc.resolve(ref), driver))
        except NotFound as exc:
            sys.stderr.write(f"kobako: {exc}\n")
            failed = True
    if opts["format"]:
        for doc in found:
            print(render(opts["format"], doc))
    else:
        print(json.dumps(found, indent=4, ensure_ascii=False))
    return 1 if failed else 0


_PRUNE = Flags(
    Flag("all", "-a", "--all", help="remove all images not used by a container, not just dangling ones"),
    Flag("force", "-f", "--force", help="do not prompt for confirmation"),
    Flag("filter", "--filter", value=True, many=True, help="not supported"),
)


def cmd_image_prune(argv: list[str]) -> int:
    parsed = parse(_PRUNE, argv, "kobako image prune [-a] [-f]")
    if parsed is None:
        return 0
    opts, args = parsed
    if args or opts["filter"]:
        raise InvalidArgument('"kobako image prune" accepts no arguments and no filters')
    what = (
        "all images without at least one container associated to them"
        if opts["all"]
        else "all dangling images"
    )
    if not opts["force"] and not confirm(f"WARNING! This will remove {what}."):
        return 0
    from kobako.images.remove import prune_images

    lines, freed = prune_images(service(), bool(opts["all"]))
    if lines:
        print("Deleted Images:\n" + "\n".join(lines) + "\n")
    print(f"Total reclaimed space: {human_size(freed)}")
    return 0

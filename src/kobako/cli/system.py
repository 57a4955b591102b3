"""System verbs (system df, system check, system prune, info) and the presentation helpers every verb
module shares: docker's human sizes and durations, tables, Go-template-like --format, -h, prompts."""

from __future__ import annotations

import os
import sys
import time

from kobako.cli.flags import Flag, Flags
from kobako.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from kobako.images.service import ImageService

# -- presentation helpers (shared by the verb modules) ----------------------------------------------------


def human_size(n: float) -> str:
    """Decimal units with three significant digits, like docker: 4.26MB, 512B, 1.2GB."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    text = f"{n:.3g}"
    if "e" in text:  # 999.7 rounds to 1e+03: carry into the next unit
        return human_size(round(n) * 1000.0**i)
    return text + units[i]


def human_duration(seconds: float) -> str:
    """docker's "About an hour", "3 days", "2 weeks" (without " ago"): the engine's wording."""
    from kobako.engine.clock import human

    return human(seconds)


def ago(t: float | None) -> str:
    return "N/A" if t is None else human_duration(time.time() - t) + " ago"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Columns as docker's tabwriter makes them: the widest cell plus three spaces, at least ten wide."""
    widths = [max(10, 3 + max(len(r[i]) for r in [header, *rows])) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        sys.stdout.write("".join(cells).rstrip() + "\n")


def render(template: str, obj: dict) -> str:
    """A Go-template subset: ``{{.Field}}``, ``{{json .}}``, ``{{json .Field}}``; ``\\t`` and ``\\n`` escapes."""
    from kobako.oci import jsoncodec

    out, rest = [], template.replace("\\t", "\t").replace("\\n", "\n")
    while "{{" in rest:
        before, _, rest = rest.partition("{{")
        expr, _, rest = rest.partition("}}")
        out.append(before)
        words = expr.split()
        as_json = bool(words) and words[0] == "json"
        path = words[1] if as_json and len(words) > 1 else (words[0] if words else "")
        if not path.startswith("."):
            raise InvalidArgument(f"template: unsupported expression {{{{{expr}}}}}")
        value: object = obj
        for key in filter(None, path[1:].split(".")):
            if not isinstance(value, dict) or key not in value:
                raise InvalidArgument(f"template: no field {key!r}")
            value = value[key]
        out.append(jsoncodec.dumps(value) if as_json else _text(value))
    out.append(rest)
    return "".join(out)


def _text(value: object) -> str:
    if isinstance(value, list):
        return "[" + " ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_text(v)}" for k, v in sorted(value.items())) + "]"
    return "" if value is None else str(value)


def parse(flags: Flags, argv: list[str], usage: str) -> tuple[dict, list[str]] | None:
    """Parse, or print the usage and return None for -h/--help."""
    head = argv[: argv.index("--")] if "--" in argv else argv
    if "--help" in head or "-h" in head:
        print(f"usage: {usage}\n\n{flags.usage()}")
        return None
    return flags.parse(argv)


def service() -> ImageService:
    from kobako.images.service import ImageService

    return ImageService()


def confirm(warning: str) -> bool:
    sys.stdout.write(warning + "\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


# -- system verbs ---------------------------------------------------------------------------------------------


def _tree_size(path: str) -> int:
    """Apparent size of the files below ``path``, each hardlinked inode once."""
    seen, total, stack = set(), 0, [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            else:
                total += st.st_size
    return total


def _containers(root: str) -> list[tuple[str, str, str]]:
    from kobako.engine.sysinfo import container_states

    return container_states(root)


def disk_usage(svc: ImageService) -> list[dict]:
    """docker system df's four rows: Type, TotalCount, Active, Size, Reclaimable (bytes)."""
    from kobako.snapshots.base import Kind

    images = svc.list_images()
    blob_sizes: dict[str, int] = {}
    active_blobs: set[str] = set()
    active_images = 0
    for image in images:
        blobs = {
            image.manifest_digest: 0,
            image.manifest["config"]["digest"]: image.manifest["config"]["size"],
        }
        blobs.update({layer["digest"]: layer["size"] for layer in image.layers})
        blob_sizes.update(blobs)
        if svc.image_in_use(image):
            active_images += 1
            active_blobs.update(blobs)
    image_size = sum(blob_sizes.values())
    image_reclaim = sum(s for d, s in blob_sizes.items() if d not in active_blobs)

    containers = _containers(svc.root)
    sizes: dict[str, int] = {}
    if containers:
        sn = svc.snapshotter()
        for info in sn.walk(lambda i: i.kind == Kind.ACTIVE and "kobako.container" in i.labels):
            cid = info.labels["kobako.container"]
            sizes[cid] = sizes.get(cid, 0) + sn.usage(info.key).size
    running = [c for c in containers if c[1] in ("running", "paused", "restarting")]
    c_size = sum(sizes.values())
    c_reclaim = sum(sizes.get(c[0], 0) for c in containers if c not in running)

    vol_base = os.path.join(svc.root, "volumes")
    try:
        volumes = sorted(n for n in os.listdir(vol_base) if os.path.isdir(os.path.join(vol_base, n)))
    except FileNotFoundError:
        volumes = []
    v_sizes = {v: _tree_size(os.path.join(vol_base, v, "_data")) for v in volumes}
    # a container record that mounts a volume names its data directory
    v_active = [v for v in volumes if any(f"volumes/{v}/_data" in c[2] for c in containers)]
    v_size = sum(v_sizes.values())
    return [
        {"Type": "Images", "TotalCount": len(images), "Active": active_images, "Size": image_size,
         "Reclaimable": image_reclaim},
        {"Type": "Containers", "TotalCount": len(containers), "Active": len(running), "Size": c_size,
         "Reclaimable": c_reclaim},
        {"Type": "Local Volumes", "TotalCount": len(volumes), "Active": len(v_active), "Size": v_size,
         "Reclaimable": v_size - sum(v_sizes[v] for v in v_active)},
        {"Type": "Build Cache", "TotalCount": 0, "Active": 0, "Size": 0, "Reclaimable": 0},
    ]  # fmt: skip


_DF = Flags(
    Flag("format", "--format", value=True, help="'json' or a Go template"),
    Flag("verbose", "-v", "--verbose", help="accepted for compatibility"),
)


def cmd_df(argv: list[str]) -> int:
    parsed = parse(_DF, argv, "kobako system df [--format json]")
    if parsed is None:
        return 0
    opts, args = parsed
    if args:
        raise InvalidArgument('"kobako system df" accepts no arguments')
    rows = []
    for r in disk_usage(service()):
        pct = f" ({100 * r['Reclaimable'] // r['Size']}%)" if r["Size"] else ""
        rows.append({"Type": r["Type"], "TotalCount": str(r["TotalCount"]), "Active": str(r["Active"]),
                     "Size": human_size(r["Size"]), "Reclaimable": human_size(r["Reclaimable"]) + pct})  # fmt: skip
    if opts["format"]:
        from kobako.oci import jsoncodec

        for row in rows:
            print(jsoncodec.dumps(row) if opts["format"] == "json" else render(opts["format"], row))
        return 0
    print_table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                [[r["Type"], r["TotalCount"], r["Active"], r["Size"], r["Reclaimable"]] for r in rows])  # fmt: skip
    return 0


_CHECK = Flags(
    Flag("repair", "--repair", help="delete corrupt blobs, broken image records and broken snapshots"),
    Flag("quiet", "-q", "--quiet", help="print problems only"),
)


def cmd_check(argv: list[str]) -> int:
    parsed = parse(_CHECK, argv, "kobako system check [--repair]")
    if parsed is None:
        return 0
    opts, args = parsed
    if args:
        raise InvalidArgument('"kobako system check" accepts no arguments')
    from kobako.images.check import check
    from kobako.metadata.lock import GCLock

    svc = service()
    with GCLock(svc.root, exclusive=True):  # no import may be between its commits and its record
        result = check(svc, repair=bool(opts["repair"]))
        if opts["repair"] and result.repaired:
            after = check(svc)
            result = result._replace(problems=after.problems, notes=result.notes + after.notes)
    repaired, problems = _check_network(svc.root, bool(opts["repair"]))
    result = result._replace(problems=list(result.problems) + problems)
    if not opts["quiet"]:
        for note in result.notes:
            print(note)
        for line in list(result.repaired) + repaired:
            print(f"repaired: {line}")
    for problem in result.problems:
        sys.stderr.write(f"problem: {problem}\n")
    if result.problems:
        sys.stderr.write(f"kobako: system check found {len(result.problems)} problem(s)\n")
        return 1
    if not opts["quiet"]:
        print("system check: no problems found")
    return 0


def _live_containers() -> set[str]:
    from kobako.engine import tasks
    from kobako.engine.containers import ContainerStore

    store = ContainerStore()
    return {r.id for r in store.list() if tasks.observe(store, r.id).status in tasks.ACTIVE}


def _check_network(root: str, repair: bool) -> tuple[list[str], list[str]]:
    """Network leaks (kobako.engine.network.check) for the containers that are not running; only where
    networking was ever used (its database exists), so a host without it is never looked at."""
    import os

    if not os.path.exists(os.path.join(root, "networks", "network.db")):
        return [], []
    from kobako.engine.network.service import NetworkService

    net = NetworkService(root)
    try:
        live = _live_containers()
        repaired = net.recover(live_containers=live) if repair else []
        return repaired, [f"network: {leak}" for leak in net.check(live_containers=live)]
    finally:
        net.close()


_PRUNE = Flags(
    Flag("all", "-a", "--all", help="remove all unused images, not just dangling ones"),
    Flag("force", "-f", "--force", help="do not prompt for confirmation"),
    Flag("volumes", "--volumes", help="not supported here: use kobako volume prune"),
    Flag("filter", "--filter", value=True, many=True, help="not supported"),
)


def cmd_prune(argv: list[str]) -> int:
    parsed = parse(_PRUNE, argv, "kobako system prune [-a] [-f]")
    if parsed is None:
        return 0
    opts, args = parsed
    if args or opts["filter"] or opts["volumes"]:
        raise InvalidArgument('"kobako system prune" accepts only -a and -f')
    images = (
        "all images without at least one container associated to them"
        if opts["all"]
        else "all dangling images"
    )
    warning = (
        f"WARNING! This will remove:\n  - {images}\n  - all content and snapshots no image or container uses"
    )
    if not opts["force"] and not confirm(warning):
        return 0
    from kobako.images.remove import prune_images

    lines, freed = prune_images(service(), bool(opts["all"]))
    if lines:
        print("Deleted Images:\n" + "\n".join(lines) + "\n")
    from kobako import paths

    networks = _prune_networks(paths.state_root())
    if networks:
        print("Deleted Networks:\n" + "\n".join(networks) + "\n")
    print(f"Total reclaimed space: {human_size(freed)}")
    return 0


def _prune_networks(root: str) -> list[str]:
    import os

    if not os.path.exists(os.path.join(root, "networks", "network.db")):
        return []
    from kobako.engine.network.service import NetworkService

    net = NetworkService(root)
    try:
        return net.prune()
    finally:
        net.close()


_INFO = Flags(Flag("format", "-f", "--format", value=True, help="'json' or a Go template"))


def cmd_info(argv: list[str]) -> int:
    parsed = parse(_INFO, argv, "kobako info [--format json]")
    if parsed is None:
        return 0
    opts, args = parsed
    if args:
        raise InvalidArgument('"kobako info" accepts no arguments')
    from kobako.engine.sysinfo import info as system_info

    info = system_info(service())
    info.pop("ContainersPaused", None)
    running = info["ContainersRunning"]
    info["ContainersStopped"] = info["Containers"] - running
    fmt = opts["format"]
    if fmt:
        from kobako.oci import jsoncodec

        print(jsoncodec.dumps(info) if fmt == "json" else render(fmt, info))
        return 0
    print(f"Server Version: {info['ServerVersion']}")
    print(f"Containers: {info['Containers']}\n Running: {running}\n Stopped: {info['ContainersStopped']}")
    print(f"Images: {info['Images']}")
    print(f"Storage Driver: {info['Driver']}")
    print(f"Cgroup Version: {info['CgroupVersion']}")
    print(f"Kernel Version: {info['KernelVersion']}\nOperating System: {info['OperatingSystem']}")
    print(f"Architecture: {info['Architecture']}\nCPUs: {info['NCPU']}")
    print(f"Kobako Root Dir: {info['KobakoRootDir']}\nRun Root Dir: {info['RunRootDir']}")
    print(f"Runtime Root Dir: {info['RuntimeRootDir']}")
    return 0

"""`kobako` read-only container verbs: ps, inspect, logs, stats, top, port (states are always observed live)."""

from __future__ import annotations

import sys
import time

from kobako.cli.flags import Flag, Flags
from kobako.engine import tasks
from kobako.engine.clock import ago
from kobako.engine.containers import ContainerRecord, ContainerStore
from kobako.engine.inspect import inspect_data, status_text  # shared with the Engine API
from kobako.engine.inspect import state_name as _state_name
from kobako.errors import InvalidArgument, NotFound
from kobako.oci import jsoncodec


def _command(record: ContainerRecord, trunc: bool) -> str:
    text = " ".join([record.path, *record.args]).strip()
    if trunc and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


PS_FLAGS = Flags(
    Flag("all", "-a", "--all", help="show all containers (default: running ones)"),
    Flag("quiet", "-q", "--quiet", help="only IDs"),
    Flag("no_trunc", "--no-trunc", help="do not truncate"),
    Flag("format", "--format", value=True, help="table (default), json, or a {{.Field}} template"),
    Flag("filter", "-f", "--filter", value=True, many=True, help="status=, name=, id=, label="),
    Flag("latest", "-l", "--latest", help="only the newest container"),
    Flag("help", "--help"),
)


def _matches(filters: list[str], record: ContainerRecord, st: tasks.TaskState) -> bool:
    for item in filters:
        key, eq, value = item.partition("=")
        if not eq:
            raise InvalidArgument(f"bad filter {item!r}: use key=value")
        if key == "status" and _state_name(st) != value:
            return False
        if key == "name" and value not in record.name:
            return False
        if key == "id" and not record.id.startswith(value):
            return False
        if key == "label":
            k, has_v, v = value.partition("=")
            if k not in record.labels or (has_v and record.labels[k] != v):
                return False
    return True


def cmd_ps(argv: list[str]) -> int:
    opts, rest = PS_FLAGS.parse(argv)
    if opts.help:
        print("usage: kobako ps [OPTIONS]\n\n" + PS_FLAGS.usage())
        return 0
    if rest:
        raise InvalidArgument(f"kobako ps takes no arguments, got {rest!r}")
    store = ContainerStore()
    now = time.time()
    rows = []
    for record in store.list():
        st = tasks.observe(store, record.id)
        if not opts.all and not opts.latest and st.status not in ("running", "paused", "restarting"):
            continue
        if not _matches(opts.filter, record, st):  # type: ignore[arg-type]
            continue
        rows.append(_ps_row(record, st, now, not opts.no_trunc))
        if opts.latest:
            break
    if opts.quiet:
        for row in rows:
            print(row["ID"])
        return 0
    fmt = opts.format or "table"
    if fmt == "json":
        for row in rows:
            print(jsoncodec.dumps(row))
    elif fmt in ("table", "table {{.ID}}"):
        header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        keys = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
        _table(header, [[r[k] for k in keys] for r in rows])
    else:
        for row in rows:
            print(render(str(fmt), row))
    return 0


def _ps_row(record: ContainerRecord, st: tasks.TaskState, now: float, trunc: bool) -> dict:
    return {
        "ID": record.id[:12] if trunc else record.id, "Image": record.image, "Command": _command(record, trunc),
        "CreatedAt": record.created, "RunningFor": ago(record.created, now), "Status": status_text(st, now),
        "State": _state_name(st), "Ports": "", "Names": record.name,
        "Labels": ",".join(f"{k}={v}" for k, v in record.labels.items()),
        "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in record.mounts), "Networks": "",
        "Size": "",
    }  # fmt: skip


def _table(header: list[str], rows: list[list[str]]) -> None:
    cells = [header, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def render(template: str, data: dict) -> str:
    """The {{.A.B}} and {{json .A}} subset of Go templates that scripts use with --format."""
    out = []
    rest = template.replace("\\n", "\n").replace("\\t", "\t")
    while "{{" in rest:
        before, _, rest = rest.partition("{{")
        expr, _, rest = rest.partition("}}")
        out.append(before)
        expr = expr.strip()
        as_json = expr.startswith("json ")
        path = expr[5:].strip() if as_json else expr
        value: object = data
        for part in [p for p in path.split(".") if p]:
            value = value.get(part, "") if isinstance(value, dict) else ""
        if as_json:
            out.append(jsoncodec.dumps(value))
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, (dict, list)):
            out.append(jsoncodec.dumps(value))
        else:
            out.append(str(value))
    out.append(rest)
    return "".join(out)


INSPECT_FLAGS = Flags(
    Flag("format", "-f", "--format", value=True, help="a {{.Field}} template"),
    Flag("type", "--type", value=True, help="container or image"),
    Flag("size", "-s", "--size"),
    Flag("help", "--help"),
)


def cmd_inspect(argv: list[str]) -> int:
    opts, refs = INSPECT_FLAGS.parse(argv)
    if opts.help or not refs:
        print("usage: kobako inspect [OPTIONS] NAME|ID [NAME|ID...]\n\n" + INSPECT_FLAGS.usage())
        return 0 if opts.help else 125
    if opts.type == "image":
        from kobako.cli.images import cmd_image_inspect

        return int(cmd_image_inspect(_strip_type(argv)))
    store = ContainerStore()
    found, missing = [], []
    for ref in refs:
        try:
            found.append(inspect_data(store, store.get(ref)))
        except NotFound:
            missing.append(ref)
    if missing and not found and opts.type != "container":
        from kobako.cli.images import cmd_image_inspect

        return int(cmd_image_inspect(_strip_type(argv)))
    if opts.format:
        for data in found:
            print(render(str(opts.format), data))
    else:
        print(jsoncodec.dumps(found, indent=4))
    for ref in missing:
        sys.stderr.write(f"kobako: no such container: {ref}\n")
    return 1 if missing else 0


def _strip_type(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--type":
            skip = True
        elif not arg.startswith("--type="):
            out.append(arg)
    return out


LOGS_FLAGS = Flags(
    Flag("follow", "-f", "--follow", help="follow the output"),
    Flag("tail", "-n", "--tail", value=True, help="lines from the end (default: all)"),
    Flag("timestamps", "-t", "--timestamps", help="show timestamps"),
    Flag("help", "--help"),
)


def cmd_logs(argv: list[str]) -> int:
    from kobako.engine import logs

    opts, refs = LOGS_FLAGS.parse(argv)
    if opts.help or len(refs) != 1:
        print("usage: kobako logs [OPTIONS] CONTAINER\n\n" + LOGS_FLAGS.usage())
        return 0 if opts.help else 125
    tail = -1
    if opts.tail not in (None, "all"):
        if not str(opts.tail).isdigit():
            raise InvalidArgument(f"invalid --tail {opts.tail!r}: a number or 'all'")
        tail = int(str(opts.tail))
    store = ContainerStore()
    record = store.get(refs[0])
    path = store.path(record.id, logs.LOG)
    entries, ino, offset = logs.read(path, tail)
    stamp = bool(opts.timestamps)
    for entry in entries:
        _print_entry(entry, stamp)
    if opts.follow:

        def running() -> bool:
            return tasks.is_active(store, record.id)

        for entry in logs.follow(path, ino, offset, running):
            _print_entry(entry, stamp)
    return 0


def _print_entry(entry: object, stamp: bool) -> None:
    text = entry.log  # type: ignore[attr-defined]
    if stamp:
        text = f"{entry.time} {text}"  # type: ignore[attr-defined]
    stream = sys.stdout if entry.stream == "stdout" else sys.stderr  # type: ignore[attr-defined]
    stream.write(text)
    stream.flush()


def _cgroup(record: ContainerRecord) -> object:
    from kobako.engine.inspect import cgroup

    return cgroup(record)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return f"{n}B"


def _host_memory() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


def stats_row(store: ContainerStore, record: ContainerRecord, interval: float = 0.25) -> list[str]:
    cg = _cgroup(record)
    first, t0 = cg.stats(), time.monotonic()  # type: ignore[attr-defined]
    time.sleep(interval)
    second, t1 = cg.stats(), time.monotonic()  # type: ignore[attr-defined]
    used = second.get("cpu", {}).get("usage", {}).get("total", 0) - first.get("cpu", {}).get("usage", {}).get(
        "total", 0
    )
    cpu = used / ((t1 - t0) * 1e9) * 100 if t1 > t0 else 0.0
    mem = second.get("memory", {})
    usage = mem.get("usage", {}).get("usage", 0)
    inactive = mem.get("raw", {}).get("total_inactive_file", mem.get("raw", {}).get("inactive_file", 0))
    usage = max(usage - inactive, 0)  # docker subtracts the reclaimable page cache
    limit = mem.get("usage", {}).get("limit", 0)
    host = _host_memory()
    if not limit or limit > host:
        limit = host
    pids = second.get("pids", {}).get("current", len(cg.pids()))  # type: ignore[attr-defined]
    return [record.id[:12], record.name, f"{cpu:.2f}%", f"{_size(usage)} / {_size(limit)}",
            f"{usage / limit * 100:.2f}%", "0B / 0B", str(pids)]  # fmt: skip


STATS_FLAGS = Flags(
    Flag("no_stream", "--no-stream", help="print once and exit"),
    Flag("all", "-a", "--all", help="all containers (default: running)"),
    Flag("help", "--help"),
)


def cmd_stats(argv: list[str]) -> int:
    opts, refs = STATS_FLAGS.parse(argv)
    store = ContainerStore()
    records = [store.get(r) for r in refs] if refs else store.list()
    header = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "PIDS"]
    while True:
        rows = []
        for record in records:
            if tasks.observe(store, record.id).status != "running":
                if refs:
                    rows.append([record.id[:12], record.name, "--", "-- / --", "--", "--", "--"])
                continue
            try:
                rows.append(stats_row(store, record))
            except (InvalidArgument, NotFound, OSError):
                continue
        _table(header, rows)
        if opts.no_stream:
            return 0
        sys.stdout.flush()
        time.sleep(1)


def cmd_top(argv: list[str]) -> int:
    if not argv:
        raise InvalidArgument("usage: kobako top CONTAINER [ps OPTIONS]")
    import subprocess

    store = ContainerStore()
    record = store.get(argv[0])
    wanted = set(_cgroup(record).pids())  # type: ignore[attr-defined]
    out = subprocess.run(["ps", *(argv[1:] or ["-ef"])], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise InvalidArgument(f"ps {' '.join(argv[1:])} failed: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    header = lines[0].split() if lines else []
    if "PID" not in header:
        raise InvalidArgument("ps output has no PID column")
    col = header.index("PID")
    print(lines[0])
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            print(line)
    return 0


def cmd_port(argv: list[str]) -> int:
    if not argv:
        raise InvalidArgument("usage: kobako port CONTAINER [PRIVATE_PORT[/PROTO]]")
    from kobako.engine import monitor_net

    store = ContainerStore()
    record = store.get(argv[0])
    lines = monitor_net.ports_lines(monitor_net.settings(store, record.id), argv[1] if len(argv) > 1 else "")
    if len(argv) > 1 and not lines:
        raise NotFound(f"no public port '{argv[1]}' published for {argv[0]}")
    for line in lines:
        print(line if len(argv) == 1 else line.partition(" -> ")[2])
    return 0

"""One function per runtime verb: turn parsed CLI arguments into lifecycle calls and print runc's output."""

from __future__ import annotations

import os
import sys

from kobako.errors import InvalidArgument
from kobako.oci import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.runtime.cli import Args


def dispatch(command: str, root: str, args: Args) -> int:
    return _HANDLERS[command](root, args)


def _int_flag(args: Args, name: str, default: int = 0) -> int:
    value = args.get(name)
    if value is None:
        return default
    if not str(value).isdigit():
        raise InvalidArgument(f"--{name.replace('_', '-')} must be a non-negative number, got {value!r}")
    return int(str(value))


def _create_options(args: Args, detach: bool) -> object:
    from kobako.runtime.lifecycle.create import CreateOptions

    return CreateOptions(
        bundle=str(args.get("bundle") or "."),
        pid_file=args.get("pid_file"),  # type: ignore[arg-type]
        console_socket=args.get("console_socket"),  # type: ignore[arg-type]
        no_pivot=bool(args.get("no_pivot")),
        no_new_keyring=bool(args.get("no_new_keyring")),
        preserve_fds=_int_flag(args, "preserve_fds"),
        detach=detach,
    )


def _one_id(args: Args, command: str) -> str:
    if len(args.positional) != 1:
        raise InvalidArgument(
            f"{command}: expected exactly one container ID, got {len(args.positional)} arguments"
        )
    return args.positional[0]


def cmd_create(root: str, args: Args) -> int:
    from kobako.runtime.lifecycle.create import create

    create(root, _one_id(args, "create"), _create_options(args, detach=True))  # type: ignore[arg-type]
    return 0


def cmd_run(root: str, args: Args) -> int:
    from kobako.runtime.lifecycle.run import run

    opts = _create_options(args, detach=bool(args.get("detach")))
    return run(root, _one_id(args, "run"), opts)  # type: ignore[arg-type]


def cmd_start(root: str, args: Args) -> int:
    from kobako.runtime.lifecycle.start import start

    start(root, _one_id(args, "start"))
    return 0


def cmd_state(root: str, args: Args) -> int:
    from kobako.runtime import container

    _sd, st = container.load(root, _one_id(args, "state"))
    print(jsoncodec.dumps(st.oci(), indent=2))
    return 0


def cmd_kill(root: str, args: Args) -> int:
    from kobako.runtime import signals
    from kobako.runtime.lifecycle.kill import kill

    if not 1 <= len(args.positional) <= 2:
        raise InvalidArgument("kill: usage: kill [--all] ID [SIGNAL]")
    sig = signals.parse(args.positional[1]) if len(args.positional) == 2 else signals.SIGTERM
    kill(root, args.positional[0], sig, bool(args.get("all")))
    return 0


def cmd_delete(root: str, args: Args) -> int:
    from kobako.runtime.lifecycle.delete import delete

    for container_id in args.positional:
        delete(root, container_id, bool(args.get("force")))
    return 0


def cmd_pause(root: str, args: Args) -> int:
    from kobako.runtime.lifecycle.pause import pause

    pause(root, _one_id(args, "pause"))
    return 0


def cmd_resume(root: str, args: Args) -> int:
    from kobako.runtime.lifecycle.pause import resume

    resume(root, _one_id(args, "resume"))
    return 0


def cmd_exec(root: str, args: Args) -> int:
    from kobako.oci import runtime_spec
    from kobako.runtime.lifecycle.exec import ExecOptions, container_spec, exec_process, process_from_args

    container_id, command = args.positional[0], args.positional[1:]
    if args.get("process"):
        path = str(args.get("process"))
        try:
            with open(path, "rb") as f:
                proc = jsoncodec.loads(f.read(), what=path)
        except FileNotFoundError:
            raise InvalidArgument(f"--process file {path!r} does not exist") from None
        runtime_spec.validate_process(proc)
    else:
        base = (
            container_spec(root, container_id)["process"]
            if os.path.isdir(os.path.join(root, container_id))
            else {}
        )
        proc = process_from_args(
            base,
            command,
            tty=bool(args.get("tty")),
            cwd=args.get("cwd"),  # type: ignore[arg-type]
            env=list(args.get("env", [])),  # type: ignore[arg-type]
            user=args.get("user"),  # type: ignore[arg-type]
            caps=list(args.get("cap", [])),  # type: ignore[arg-type]
            no_new_privs=True if args.get("no_new_privs") else None,
        )
        gids = [int(g) for g in args.get("additional_gids", [])]  # type: ignore[union-attr]
        if gids:
            proc["user"]["additionalGids"] = gids
    opts = ExecOptions(
        process=proc,
        detach=bool(args.get("detach")),
        pid_file=args.get("pid_file"),  # type: ignore[arg-type]
        console_socket=args.get("console_socket"),  # type: ignore[arg-type]
        preserve_fds=_int_flag(args, "preserve_fds"),
    )
    return exec_process(root, container_id, opts)


def cmd_list(root: str, args: Args) -> int:
    from kobako.runtime import container
    from kobako.runtime import state as state_mod
    from kobako.runtime.status import STOPPED

    fmt = args.get("format", "table")
    if fmt not in ("table", "json"):
        raise InvalidArgument(f"invalid --format {fmt!r}: use table or json")
    rows = []
    for cid in state_mod.list_ids(root):
        try:
            _sd, st = container.load(root, cid)
        except Exception:
            continue
        rows.append(
            {
                "ociVersion": state_mod.OCI_VERSION,
                "id": st.id,
                "pid": 0 if st.status == STOPPED else st.pid,
                "status": st.status,
                "bundle": st.bundle,
                "rootfs": st.rootfs,
                "created": st.created,
                "owner": st.owner,
                **({"annotations": st.annotations} if st.annotations else {}),
            }
        )
    if args.get("quiet"):
        for row in rows:
            print(row["id"])
    elif fmt == "json":
        print(jsoncodec.dumps(rows))
    else:
        _table(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
               [[r["id"], r["pid"], r["status"], r["bundle"], r["created"], r["owner"]] for r in rows])  # fmt: skip
    return 0


def _table(header: list[str], rows: list[list[object]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def cmd_ps(root: str, args: Args) -> int:
    from kobako.runtime import container

    container_id, ps_args = args.positional[0], args.positional[1:]
    _sd, st = container.load(root, container_id)
    cgroup = container.cgroup_of(st)
    pids = sorted(cgroup.pids()) if cgroup is not None else ([st.pid] if st.pid else [])  # type: ignore[attr-defined]
    fmt = args.get("format", "table")
    if fmt == "json":
        print(jsoncodec.dumps(pids))
        return 0
    if fmt != "table":
        raise InvalidArgument(f"invalid --format {fmt!r}: use table or json")
    import subprocess

    out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise InvalidArgument(f"ps {' '.join(ps_args)} failed: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise InvalidArgument("ps output has no PID column")
    col = header.index("PID")
    print(lines[0])
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            print(line)
    return 0


def cmd_events(root: str, args: Args) -> int:
    import time

    from kobako.runtime import container
    from kobako.runtime.status import STOPPED

    container_id = _one_id(args, "events")
    interval = _parse_duration(str(args.get("interval", "5s")))
    while True:
        _sd, st = container.load(root, container_id)
        if st.status == STOPPED:
            if args.get("stats"):
                raise InvalidArgument(f"container {container_id!r} is not running")
            return 0
        cgroup = container.cgroup_of(st)
        data = cgroup.stats() if cgroup is not None else {}  # type: ignore[attr-defined]
        sys.stdout.write(jsoncodec.dumps({"type": "stats", "id": container_id, "data": data}) + "\n")
        sys.stdout.flush()
        if args.get("stats"):
            return 0
        time.sleep(interval)


def _parse_duration(text: str) -> float:
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            number = text[: -len(suffix)]
            try:
                value = float(number) * scale
            except ValueError:
                break
            if value > 0:
                return value
            break
    raise InvalidArgument(f"invalid --interval {text!r}: use a duration like 5s or 500ms")


def cmd_spec(root: str, args: Args) -> int:
    from kobako.oci import runtime_spec

    bundle = str(args.get("bundle") or ".")
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise InvalidArgument(f"file {path} exists: remove it first")
    spec = runtime_spec.default_spec(rootless=bool(args.get("rootless")))
    with open(path, "x") as f:
        f.write(jsoncodec.dumps(spec, indent=2) + "\n")
    return 0


def cmd_features(root: str, args: Args) -> int:
    from kobako.runtime.features import features

    print(jsoncodec.dumps(features(), indent=2))
    return 0


_HANDLERS = {
    "create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state, "kill": cmd_kill,
    "delete": cmd_delete, "exec": cmd_exec, "list": cmd_list, "ps": cmd_ps, "pause": cmd_pause,
    "resume": cmd_resume, "events": cmd_events, "spec": cmd_spec, "features": cmd_features,
}  # fmt: skip

"""`kobako-runtime`: runc's command line (verbs, flags, output, exit codes) over the runtime library.

Parsing only; every verb lives in ``lifecycle``. Flags follow runc (urfave/cli): ``--flag value``,
``--flag=value`` and ``-flag``. Imports stay lazy so ``state`` or ``kill`` start in a few milliseconds.
"""

from __future__ import annotations

import os
import sys

from kobako.errors import InvalidArgument, KobakoError

VERSION = "0.1.0"
SPEC_VERSION = "1.0.2"

# command -> {flag: (dest, takes_value, repeatable)}
_B, _V, _R = (False, False), (True, False), (True, True)
_CREATE = {
    "bundle": ("bundle", *_V), "b": ("bundle", *_V), "console-socket": ("console_socket", *_V),
    "pid-file": ("pid_file", *_V), "no-pivot": ("no_pivot", *_B), "no-new-keyring": ("no_new_keyring", *_B),
    "preserve-fds": ("preserve_fds", *_V), "notify-socket": ("notify_socket", *_V),
}  # fmt: skip
COMMANDS: dict[str, dict[str, tuple[str, bool, bool]]] = {
    "create": _CREATE,
    "run": {**_CREATE, "detach": ("detach", *_B), "d": ("detach", *_B), "keep": ("keep", *_B)},
    "start": {},
    "state": {},
    "kill": {"all": ("all", *_B), "a": ("all", *_B)},
    "delete": {"force": ("force", *_B), "f": ("force", *_B)},
    "exec": {
        "console-socket": ("console_socket", *_V), "cwd": ("cwd", *_V), "env": ("env", *_R), "e": ("env", *_R),
        "tty": ("tty", *_B), "t": ("tty", *_B), "user": ("user", *_V), "u": ("user", *_V),
        "additional-gids": ("additional_gids", *_R), "g": ("additional_gids", *_R),
        "process": ("process", *_V), "p": ("process", *_V), "detach": ("detach", *_B), "d": ("detach", *_B),
        "pid-file": ("pid_file", *_V), "process-label": ("process_label", *_V), "apparmor": ("apparmor", *_V),
        "no-new-privs": ("no_new_privs", *_B), "cap": ("cap", *_R), "c": ("cap", *_R),
        "preserve-fds": ("preserve_fds", *_V), "ignore-paused": ("ignore_paused", *_B),
    },
    "list": {"format": ("format", *_V), "f": ("format", *_V), "quiet": ("quiet", *_B), "q": ("quiet", *_B)},
    "ps": {"format": ("format", *_V), "f": ("format", *_V)},
    "pause": {},
    "resume": {},
    "events": {"stats": ("stats", *_B), "interval": ("interval", *_V)},
    "spec": {"bundle": ("bundle", *_V), "b": ("bundle", *_V), "rootless": ("rootless", *_B)},
    "features": {},
}  # fmt: skip
_GLOBAL = {
    "root": ("root", *_V), "log": ("log", *_V), "log-format": ("log_format", *_V), "debug": ("debug", *_B),
    "systemd-cgroup": ("systemd_cgroup", *_B), "rootless": ("rootless", *_V), "criu": ("criu", *_V),
    "help": ("help", *_B), "h": ("help", *_B), "version": ("version", *_B), "v": ("version", *_B),
}  # fmt: skip
_NEED_ID = {"create", "run", "start", "state", "kill", "delete", "exec", "ps", "pause", "resume", "events"}
USAGE = """usage: kobako-runtime [global options] COMMAND [options] [ID] [ARGS...]

An OCI runtime with runc's command line.

commands:
  spec      write a default config.json into the bundle
  create    create a container (its process waits for `start`)
  start     start the user process of a created container
  run       create and start a container (foreground: wait and delete)
  state     print the OCI state JSON of a container
  kill      send a signal to the container's init (default SIGTERM)
  delete    delete a stopped container (--force: any)
  exec      run another process in a container
  list      list containers
  ps        list the processes of a container
  pause     freeze all processes of a container
  resume    thaw a paused container
  events    print container stats (--stats: once)
  features  print the features this runtime supports

global options: --root DIR, --log FILE, --log-format text|json, --debug, --systemd-cgroup, --version"""


class Args:
    def __init__(self) -> None:
        self.opts: dict[str, object] = {}
        self.positional: list[str] = []

    def get(self, key: str, default: object = None) -> object:
        return self.opts.get(key, default)


def _parse_flags(
    argv: list[str], table: dict[str, tuple[str, bool, bool]], args: Args, stop_at_positional: bool
) -> int:
    """Parse flags into ``args``; return the index of the first argument not consumed."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return i + 1
        if not arg.startswith("-") or arg == "-":
            if stop_at_positional:
                return i
            args.positional.append(arg)
            i += 1
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in table:
            raise InvalidArgument(f"flag provided but not defined: -{name}")
        dest, takes_value, repeatable = table[name]
        if takes_value:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise InvalidArgument(f"flag needs an argument: -{name}")
                value = argv[i]
            if repeatable:
                args.opts.setdefault(dest, []).append(value)  # type: ignore[union-attr]
            else:
                args.opts[dest] = value
        else:
            args.opts[dest] = value.lower() not in ("false", "0") if eq else True
        i += 1
    return i


def parse(argv: list[str]) -> tuple[Args, str | None, Args]:
    glob = Args()
    i = _parse_flags(argv, _GLOBAL, glob, stop_at_positional=True)
    if i >= len(argv):
        return glob, None, Args()
    command = argv[i]
    if command not in COMMANDS:
        if command in ("checkpoint", "restore", "update"):
            raise InvalidArgument(f"command {command!r} is not supported by kobako-runtime")
        raise InvalidArgument(f"no such command {command!r} (see kobako-runtime --help)")
    cmd = Args()
    rest = argv[i + 1 :]
    if command in ("exec", "ps"):
        # Flags come before the ID; everything after the ID belongs to the process (exec) or ps.
        j = _parse_flags(rest, COMMANDS[command], cmd, stop_at_positional=True)
        cmd.positional = rest[j:]
    else:
        _parse_flags(rest, COMMANDS[command], cmd, stop_at_positional=False)
    return glob, command, cmd


class Logger:
    def __init__(self, path: str | None, fmt: str) -> None:
        self.path = path
        self.json = fmt == "json"

    def error(self, message: str) -> None:
        if self.path:
            try:
                with open(self.path, "a") as f:
                    f.write(self._line("error", message))
            except OSError:
                pass
        sys.stderr.write(f"kobako-runtime: {message}\n")

    def warn(self, message: str) -> None:
        if self.path:
            try:
                with open(self.path, "a") as f:
                    f.write(self._line("warning", message))
            except OSError:
                pass
        else:
            sys.stderr.write(f"kobako-runtime: warning: {message}\n")

    def _line(self, level: str, message: str) -> str:
        from kobako.runtime.state import now_rfc3339

        if self.json:
            from kobako.oci import jsoncodec

            return jsoncodec.dumps({"level": level, "msg": message, "time": now_rfc3339()}) + "\n"
        return f'time="{now_rfc3339()}" level={level} msg="{message}"\n'


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logger = Logger(None, "text")
    try:
        glob, command, cmd = parse(argv)
        fmt = str(glob.get("log_format", "text"))
        if fmt not in ("text", "json"):
            raise InvalidArgument(f"unknown --log-format {fmt!r}: use text or json")
        logger = Logger(glob.get("log"), fmt)  # type: ignore[arg-type]
        if glob.get("version"):
            print(f"kobako-runtime version {VERSION}\nspec: {SPEC_VERSION}")
            return 0
        if command is None or glob.get("help"):
            print(USAGE)
            return 0 if glob.get("help") or not argv else 1
        if glob.get("systemd_cgroup"):
            logger.warn(
                "--systemd-cgroup is not supported: using the cgroupfs driver (slice paths are mapped)"
            )
        if command in _NEED_ID and not cmd.positional:
            raise InvalidArgument(f"{command}: a container ID is required")
        from kobako.runtime.commands import dispatch

        root = str(glob.get("root") or _default_root())
        return dispatch(command, root, cmd)
    except KobakoError as exc:
        logger.error(str(exc))
        return exc.exit_code
    except OSError as exc:
        detail = exc.strerror or str(exc)
        logger.error(f"{detail}: {exc.filename}" if exc.filename else detail)
        return 1
    except KeyboardInterrupt:
        return 130


def _default_root() -> str:
    from kobako.runtime.state import default_root

    return default_root()


def run_and_exit() -> None:
    """Console entry point: skip interpreter teardown (several ms) once output is flushed."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run_and_exit()

"""``kobako system service [--time SECONDS] [unix:///PATH | tcp://HOST:PORT]``: the Docker-compatible Engine API.

Default address: ``unix://<run root>/docker.sock`` (/run/kobako/docker.sock), mode 0660. TCP only when given,
and only on the address given. ``--time`` ends the service after that many seconds without a client (as
podman's; 0, the default, never). Clients use it as a docker daemon: ``DOCKER_HOST=unix:///PATH docker ps``.
"""

from __future__ import annotations

import os
import sys

from kobako.cli.flags import Flag, Flags
from kobako.errors import InvalidArgument

FLAGS = Flags(
    Flag(
        "time",
        "-t",
        "--time",
        "--timeout",
        value=True,
        help="seconds without a client before exiting (0: never)",
    ),
    Flag("log_level", "--log-level", value=True, default="info", help="debug, info, warning, error"),
    Flag("help", "-h", "--help", help="print usage"),
)


def cmd_service(argv: list[str]) -> int:
    opts, rest = FLAGS.parse(argv)
    if opts.help:
        print(
            "usage: kobako system service [--time SECONDS] [unix:///PATH | tcp://HOST:PORT]\n\n"
            + FLAGS.usage()
        )
        return 0
    if len(rest) > 1:
        raise InvalidArgument('"kobako system service" accepts at most one address')
    idle = 0.0
    if opts.time is not None:
        try:
            idle = float(str(opts.time))
        except ValueError:
            raise InvalidArgument(f"invalid --time {opts.time!r}: a number of seconds") from None
        if idle < 0:
            raise InvalidArgument(f"invalid --time {opts.time!r}: must not be negative")
    from kobako import paths

    address = rest[0] if rest else "unix://" + os.path.join(paths.run_root(), "docker.sock")
    level = str(opts.log_level).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise InvalidArgument(f"invalid --log-level {opts.log_level!r}")
    # The fork server first, while this process is small and has no threads (kobako.engine.forkserver):
    # every monitor it forks carries only this much memory.
    from kobako.engine.forkserver import ForkServer

    forks = ForkServer()
    forks.start()
    try:
        import logging

        from kobako.api.app import parse_address

        parse_address(address)

        logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(message)s")
        from kobako.api.app import serve

        serve(address, idle, forks)
    finally:
        forks.close()
    return 0

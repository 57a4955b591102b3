"""`kobako`: the docker-like command line (images and containers arrive with the images issue)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in ([], ["--help"], ["-h"]):
        print("usage: kobako COMMAND [ARGS...]\n\nThe OCI runtime is `kobako-runtime`; see README.md.")
        return 0
    if args == ["--version"]:
        from kobako import __version__

        print(f"kobako version {__version__}")
        return 0
    print(f"kobako: unknown command {args[0]!r}", file=sys.stderr)
    return 2

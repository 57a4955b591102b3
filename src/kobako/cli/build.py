"""``kobako build`` / ``kobako image build``: flags → :func:`kobako.build.builder.build`."""

from __future__ import annotations

import os

from kobako.cli.flags import Flag, Flags
from kobako.errors import InvalidArgument

USAGE = "usage: kobako build [OPTIONS] CONTEXT\n\nBuild an image from a Dockerfile.\n\noptions:\n"
SPEC = Flags(
    Flag("tag", "-t", "--tag", value=True, many=True, help="name the image NAME[:TAG] (repeatable)"),
    Flag("file", "-f", "--file", value=True, help="the Dockerfile (default CONTEXT/Dockerfile; - for stdin)"),
    Flag("build_arg", "--build-arg", value=True, many=True, help="set a build argument KEY=VALUE (or KEY)"),
    Flag("target", "--target", value=True, help="build up to this stage"),
    Flag("no_cache", "--no-cache", help="run every step, ignoring the build cache"),
    Flag("pull", "--pull", help="pull the base images first (with kobako's registry client)"),
    Flag("label", "--label", value=True, many=True, help="add a label KEY=VALUE to the image"),
    Flag("platform", "--platform", value=True, help="OS/ARCH of the image (this machine's only)"),
    Flag("quiet", "-q", "--quiet", help="print only the image ID"),
    Flag("iidfile", "--iidfile", value=True, help="write the image ID to a file"),
    Flag("help", "-h", "--help", help="show this help"),
)


def _pairs(items: list[str], flag: str, from_env: bool) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {flag} {item!r}: want KEY=VALUE")
        if not eq:
            if not from_env:
                raise InvalidArgument(f"invalid {flag} {item!r}: want KEY=VALUE")
            if key not in os.environ:
                continue  # docker: a bare KEY takes the value from the environment, if it is set
            value = os.environ[key]
        out[key] = value
    return out


def cmd_build(argv: list[str]) -> int:
    opts, rest = SPEC.parse(argv)
    if opts.help:
        print(USAGE + SPEC.usage())
        return 0
    if len(rest) != 1:
        raise InvalidArgument('"kobako build" requires exactly 1 argument: the build context (a directory)')
    from kobako.build.builder import BuildOptions, build

    build(BuildOptions(context=rest[0], dockerfile=str(opts.file or ""), tags=list(opts.tag),
                       build_args=_pairs(list(opts.build_arg), "--build-arg", True), target=str(opts.target or ""),
                       no_cache=bool(opts.no_cache), pull=bool(opts.pull),
                       labels=_pairs(list(opts.label), "--label", False), platform=str(opts.platform or ""),
                       quiet=bool(opts.quiet), iidfile=str(opts.iidfile or "")))  # fmt: skip
    return 0

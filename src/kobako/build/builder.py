"""``kobako build``: context + Dockerfile → an image in kobako's store, tagged.

    image_id = build(BuildOptions(context="app", tags=["app:1"], build_args={"V": "2"}))

Order: read and parse the Dockerfile (syntax errors before any work), check tags and platform, plan the
stages, then — holding the GC lock shared, so no collection removes a layer before the image names it —
run the steps and write the image. Names are set only after everything else succeeded. Mounts, active
snapshots and bundles are released on every path; those of a killed build are swept by the next one.
"""

from __future__ import annotations

import os
import sys

from kobako.errors import FailedPrecondition, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from kobako.build.context import SourceTree
    from kobako.build.dockerfile.ast import Dockerfile
    from kobako.build.session import Output
    from kobako.images.service import ImageService

# Docker's predefined proxy ARGs: usable without an ARG line, kept out of history and cache keys.
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY",
              "no_proxy", "ALL_PROXY", "all_proxy")  # fmt: skip
DOCKERFILE_NAMES = ("Dockerfile", "Containerfile")


class BuildOptions:
    def __init__(self, context: str = ".", dockerfile: str = "", tags: list[str] | None = None,
                 build_args: dict[str, str] | None = None, target: str = "", no_cache: bool = False,
                 pull: bool = False, labels: dict[str, str] | None = None, platform: str = "",
                 quiet: bool = False, iidfile: str = "") -> None:  # fmt: skip
        self.context = context
        self.dockerfile = dockerfile
        self.tags = list(tags or [])
        self.build_args = dict(build_args or {})
        self.target = target
        self.no_cache = no_cache
        self.pull = pull
        self.labels = dict(labels or {})
        self.platform = platform
        self.quiet = quiet
        self.iidfile = iidfile


def read_dockerfile(opts: BuildOptions, stdin: TextIO | None = None) -> tuple[str, str]:
    """(path shown in messages, text) of the Dockerfile: ``-f`` (relative to the current directory, ``-``
    for stdin) or Dockerfile/Containerfile in the context."""
    if opts.dockerfile == "-":
        return "Dockerfile", (stdin or sys.stdin).read()
    if opts.dockerfile:
        path = opts.dockerfile
    else:
        path = next((os.path.join(opts.context, n) for n in DOCKERFILE_NAMES
                     if os.path.isfile(os.path.join(opts.context, n))),
                    os.path.join(opts.context, "Dockerfile"))  # fmt: skip
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return os.path.normpath(path), f.read()
    except FileNotFoundError:
        raise NotFound(f"cannot find the Dockerfile {path!r}") from None
    except IsADirectoryError:
        raise InvalidArgument(f"the Dockerfile {path!r} is a directory") from None


def target_platform(text: str) -> dict:
    from kobako.oci.image_spec import host_platform, normalize_platform

    host = host_platform()
    if not text:
        return host
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid --platform {text!r}: want OS/ARCH[/VARIANT], e.g. linux/amd64")
    wanted = {"os": parts[0], "architecture": parts[1], **({"variant": parts[2]} if len(parts) == 3 else {})}
    if normalize_platform(wanted)[:2] != normalize_platform(host)[:2]:
        raise FailedPrecondition(f"--platform {text}: kobako builds only for this machine's platform "
                                 f"{host['os']}/{host['architecture']} (no emulation)")  # fmt: skip
    return {"os": host["os"], "architecture": host["architecture"],
            **({"variant": parts[2]} if len(parts) == 3 else {})}  # fmt: skip


def build(opts: BuildOptions, service: ImageService | None = None, stdout: TextIO | None = None) -> str:
    """Build; return the image ID. Progress goes to ``stdout`` unless ``opts.quiet``."""
    from kobako.build.context import SourceTree, load_ignore
    from kobako.build.dockerfile.parser import parse
    from kobako.build.session import Output
    from kobako.oci.reference import normalize

    if not os.path.isdir(opts.context):
        if opts.context.startswith(("http://", "https://", "git@", "git://")):
            raise FailedPrecondition(f"build context {opts.context}: remote contexts need a network; use a "
                                     "local directory")  # fmt: skip
        raise NotFound(f"build context {opts.context!r} is not a directory")
    path, text = read_dockerfile(opts)
    df = parse(text, path)
    names = []
    for tag in opts.tags:
        name = normalize(tag)
        if "@" in name:
            raise InvalidArgument(f"invalid tag {tag!r}: a digest is not a tag")
        names.append(name)
    platform = target_platform(opts.platform)
    out = Output(opts.quiet, stdout)
    syntax = df.directives.get("syntax", "")
    if syntax and "docker/dockerfile" not in syntax.split("@", 1)[0]:
        out.warn(f"# syntax={syntax}: kobako has one built-in Dockerfile frontend; the directive is ignored")
    if service is None:
        from kobako.images.service import ImageService

        service = ImageService()
        own_service = True
    else:
        own_service = False
    dockerfile_abs = os.path.abspath(path) if opts.dockerfile != "-" else None
    context = SourceTree(opts.context, load_ignore(opts.context, dockerfile_abs))
    try:
        image_id = _build(service, df, context, opts, names, platform, out)
    finally:
        if own_service:
            service.close()
    if opts.iidfile:
        with open(opts.iidfile, "w") as f:
            f.write(image_id)
    if opts.quiet:
        (stdout or sys.stdout).write(image_id + "\n")
    else:
        out.line(image_id)
    return image_id


def pull_bases(service: ImageService, refs: list[str], platform: dict, out: Output) -> None:
    """``--pull``: fetch each base image from its registry before the build (kobako's registry client)."""
    try:
        from kobako.registry.client.pull import pull
    except ImportError:
        raise FailedPrecondition(
            "--pull needs kobako's registry client, which this installation lacks"
        ) from None
    for ref in refs:
        out.line(f"Pulling {ref}")
        pull(service, ref, platform=f"{platform['os']}/{platform['architecture']}")


def _build(service: ImageService, df: Dockerfile, context: SourceTree, opts: BuildOptions, names: list[str],
           platform: dict, out: Output) -> str:  # fmt: skip
    from kobako.build.cache import BuildCache
    from kobako.build.executor import Executor
    from kobako.build.layers import Layers, sweep_stale
    from kobako.build.planner import plan
    from kobako.build.record import write_image
    from kobako.build.session import Session
    from kobako.metadata.lock import GCLock
    from kobako.oci.image_spec import host_platform

    cache = BuildCache(service.root)
    try:
        sweep_stale(service.root)
        the_plan = plan(df, opts.build_args, opts.target, platform, host_platform())
        if opts.pull:
            pull_bases(service, the_plan.images(), platform, out)
        with GCLock(service.root):
            layers = Layers(service)
            session = Session(
                service, layers, cache, context, df, out, platform=platform, no_cache=opts.no_cache
            )
            session.build_args = dict(opts.build_args)
            session.global_args = the_plan.global_args
            session.used_args = set(the_plan.declared)
            session.proxy_args = {k: v for k, v in opts.build_args.items() if k in PROXY_ARGS}
            state = Executor(session, the_plan).run()
            unused = sorted(set(opts.build_args) - session.used_args - set(PROXY_ARGS))
            if unused:
                out.warn(f"one or more build-args {unused} were not consumed")
            out.line(f"COMMIT {' '.join(names)}".rstrip())
            image_id = write_image(service, state, names, opts.labels)
        out.line(f"--> {image_id.removeprefix('sha256:')[:12]}")
        for name in names:
            out.line(f"Successfully tagged {name}")
        return image_id
    finally:
        cache.close()

"""Which stages to build, in which order, and the variables FROM lines see.

Global ARGs (before the first FROM) take ``--build-arg`` values over their defaults; with BuildKit's
automatic platform args (TARGETPLATFORM, TARGETARCH, BUILDPLATFORM...) they are all FROM lines and
``--from`` values may use, and what ``ARG NAME`` without a value brings into a stage.

The target is ``--target`` (a stage name) or the last stage. Stages it needs, directly or through others,
are those named (or numbered) by ``FROM``, ``COPY --from`` and ``RUN --mount=...,from=``; every other stage
is skipped. Stages may only use earlier stages, so Dockerfile order is a valid build order.
"""

from __future__ import annotations

from kobako.build.dockerfile.expand import ExpandError, process_word
from kobako.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.build.dockerfile.ast import Dockerfile, Instruction, Stage


class Plan:
    """``stages`` to build in order, the ``target``, ``bases`` (stage index → expanded FROM image or stage),
    ``global_args``, ``total_steps`` (FROM lines and instructions of the stages built)."""

    def __init__(self, stages: list[Stage], target: Stage, bases: dict[int, str], global_args: dict[str, str],
                 declared: set[str]) -> None:  # fmt: skip
        self.stages = stages
        self.target = target
        self.bases = bases
        self.global_args = global_args
        self.declared = declared
        self.total_steps = sum(1 + len(s.instructions) for s in stages)
        self.from_stage: set[int] = set()  # stages whose FROM names an earlier stage

    def images(self) -> list[str]:
        """The image references the stages built start from (no stages, no scratch), once each."""
        out: list[str] = []
        for s in self.stages:
            base = self.bases[s.index]
            if s.index not in self.from_stage and base.lower() != "scratch" and base not in out:
                out.append(base)
        return out


def platform_args(target: dict, build: dict) -> dict[str, str]:
    out = {}
    for prefix, p in (("TARGET", target), ("BUILD", build)):
        variant = p.get("variant", "")
        out[prefix + "PLATFORM"] = f"{p['os']}/{p['architecture']}" + (f"/{variant}" if variant else "")
        out[prefix + "OS"], out[prefix + "ARCH"], out[prefix + "VARIANT"] = (
            p["os"],
            p["architecture"],
            variant,
        )
    return out


def _expand(text: str, env: dict[str, str], ins: Instruction, path: str, escape: str) -> str:
    try:
        return process_word(text, env, escape)
    except ExpandError as exc:
        raise InvalidArgument(f"{path}:{ins.line}: {ins.cmd}: {exc}") from None


def plan(
    df: Dockerfile, build_args: dict[str, str], target: str, platform: dict, build_platform: dict
) -> Plan:
    global_args = platform_args(platform, build_platform)
    declared: set[str] = set()
    for ins in df.meta_args:
        for raw_name, raw_default in ins.pairs:
            name = _expand(raw_name, global_args, ins, df.path, df.escape)
            declared.add(name)
            if name in build_args:
                global_args[name] = build_args[name]
            elif raw_default is not None:
                global_args[name] = _expand(raw_default, global_args, ins, df.path, df.escape)
            else:
                global_args.pop(name, None)

    if target:
        chosen = df.stage_by_name(target)
        if chosen is None:
            raise NotFound(f"target stage {target!r} could not be found in {df.path}")
    else:
        chosen = df.stages[-1]

    bases: dict[int, str] = {}
    deps: dict[int, set[int]] = {}
    from_stage: set[int] = set()
    for stage in df.stages:
        base = _expand(stage.base, global_args, stage.from_instruction, df.path, df.escape)
        if not base:
            raise InvalidArgument(f"{df.path}:{stage.from_instruction.line}: FROM {stage.base!r} expands to "
                                  "nothing: the base name cannot be empty")  # fmt: skip
        bases[stage.index] = base
        needs: set[int] = set()
        for ref in [base, *_references(stage, global_args, df)]:
            found = _stage_ref(df, ref, stage.index)
            if found is not None:
                needs.add(found)
        deps[stage.index] = needs
        if _stage_ref(df, base, stage.index) is not None:
            from_stage.add(stage.index)

    wanted: set[int] = set()
    todo = [chosen.index]
    while todo:
        index = todo.pop()
        if index not in wanted:
            wanted.add(index)
            todo.extend(deps[index])
    stages = [s for s in df.stages if s.index in wanted]
    result = Plan(stages, chosen, bases, global_args, declared)
    result.from_stage = from_stage
    return result


def _references(stage: Stage, global_args: dict[str, str], df: Dockerfile) -> list[str]:
    refs = []
    for ins in stage.instructions:
        if ins.cmd in ("COPY", "ADD") and ins.flag("from"):
            refs.append(_expand(ins.flag("from") or "", global_args, ins, df.path, df.escape))
        elif ins.cmd == "RUN":
            for value in ins.flags.get("mount", []):
                for field in value.split(","):
                    key, _, val = field.strip().partition("=")
                    if key.lower() == "from" and val:
                        refs.append(_expand(val, global_args, ins, df.path, df.escape))
    return refs


def _stage_ref(df: Dockerfile, ref: str, before: int) -> int | None:
    """The index of an earlier stage named (or numbered) ``ref``."""
    stage = df.stage_by_name(ref)
    if stage is not None and stage.index < before:
        return stage.index
    if ref.isdigit() and int(ref) < before:
        return int(ref)
    return None

"""Run the planned stages step by step, with the cache.

For each stage: FROM gives the starting state (scratch, a local image, or an earlier stage's result, whose
build arguments come along), then the base image's ONBUILD triggers run (and are cleared), then each
instruction. A step's module (:mod:`.run`, :mod:`.copy`, :mod:`.config`) prepares it: expands variables,
computes its cache key parts. The key chains from the previous step's key; a hit whose layer blobs still
exist is adopted and printed ``--> CACHED``; a miss runs the step on a copy of the state and records it.
Output: ``STEP n/N: INSTRUCTION`` for every step of the stages built.
"""

from __future__ import annotations

from kobako.build.cache import step_key
from kobako.errors import FailedPrecondition, InvalidArgument, KobakoError, from_oserror

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.build.dockerfile.ast import Instruction, Stage
    from kobako.build.planner import Plan
    from kobako.build.session import Session
    from kobako.build.state import StageState


class Executor:
    def __init__(self, session: Session, plan: Plan) -> None:
        self.session = session
        self.plan = plan
        self.step_no = 0

    def run(self) -> StageState:
        s = self.session
        for stage in self.plan.stages:
            s.current_stage = stage.index
            state = self._from(stage)
            for ins in stage.instructions:
                self._header(ins)
                state = self.step(ins, state)
            s.stages[stage.index] = state
        return s.stages[self.plan.target.index]

    def _header(self, ins: Instruction) -> None:
        self.step_no += 1
        first = ins.original.split("\n", 1)[0]
        self.session.out.line(f"STEP {self.step_no}/{self.plan.total_steps}: {first}")

    # -- FROM --------------------------------------------------------------------------------------------

    def _from(self, stage: Stage) -> StageState:
        from kobako.build.state import StageState

        s = self.session
        ins = stage.from_instruction
        self._header(ins)
        if stage.platform:
            self._check_platform(stage, ins)
        base = self.plan.bases[stage.index]
        parent = s.stage_state(base)
        if parent is not None:
            state = parent.derive(parent.key)
            state.cmd_set = False
        elif base.lower() == "scratch":
            state = StageState.scratch(s.platform, step_key("scratch", s.platform))
        else:
            state = s.image_state(base).derive(s.image_state(base).key)
            state.args = {}
        triggers = list(state.section.get("OnBuild") or [])
        if triggers:
            state.section.pop("OnBuild", None)
            state.key = step_key(state.key, "ONBUILD triggers cleared")
            for n, trigger in enumerate(triggers, 1):
                sub = self._trigger(trigger, ins)
                s.out.line(f"--> ONBUILD {n}/{len(triggers)}: {trigger}")
                state = self.step(sub, state)
        return state

    def _check_platform(self, stage: Stage, ins: Instruction) -> None:
        from kobako.build.dockerfile.expand import process_word

        s = self.session
        wanted = process_word(stage.platform, s.global_args, s.escape)
        here = f"{s.platform['os']}/{s.platform['architecture']}"
        if wanted and not (wanted == here or wanted.startswith(here + "/")):
            raise FailedPrecondition(f"{s.where(ins)}: FROM --platform={wanted}: kobako builds only for {here} "
                                     "(no emulation)")  # fmt: skip

    def _trigger(self, trigger: str, at: Instruction) -> Instruction:
        from kobako.build.dockerfile.ast import DockerfileError
        from kobako.build.dockerfile.lexer import LogicalLine
        from kobako.build.dockerfile.parser import DockerfileSyntaxError, parse_instruction

        ll = LogicalLine()
        ll.add(trigger, at.line, at.column)
        try:
            return parse_instruction(ll, self.session.escape)
        except DockerfileError as exc:
            raise DockerfileSyntaxError(
                self.session.dockerfile.path,
                at.line,
                at.column,
                f"ONBUILD trigger {trigger!r} of the base image: {exc.message}",
            ) from None

    # -- one step ----------------------------------------------------------------------------------------

    def step(self, ins: Instruction, state: StageState) -> StageState:
        from kobako.build import config, copy, run
        from kobako.build.dockerfile.expand import ExpandError

        s = self.session
        module = run if ins.cmd == "RUN" else copy if ins.cmd in ("COPY", "ADD") else config
        try:
            prepared = module.prepare(s, ins, state)
            if prepared.key_parts is None:
                new = state.derive(state.key)
            else:
                key = step_key(state.key, *prepared.key_parts)
                new = None if s.no_cache else self._cached(key, state)
                if new is not None:
                    s.out.line("--> CACHED")
                else:
                    new = state.derive(key)
                    assert prepared.apply is not None
                    prepared.apply(new)
                    s.cache.put(key, new.to_doc())
            if prepared.after is not None:
                prepared.after(new)
            return new
        except ExpandError as exc:
            raise InvalidArgument(f"{s.where(ins)}: {_short(ins)}: {exc}") from None
        except KobakoError as exc:
            raise _located(exc, s.where(ins), ins) from exc
        except OSError as exc:
            raise from_oserror(exc, f"{s.where(ins)}: {_short(ins)}") from exc

    def _cached(self, key: str, state: StageState) -> StageState | None:
        s = self.session
        doc = s.cache.get(key)
        if doc is None:
            return None
        if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers"), list):
            s.cache.drop(key)
            return None
        if not s.layers.valid(doc["layers"]):  # GC collected its blobs: run the step again
            s.cache.drop(key)
            return None
        return state.adopt(doc, key)


def _short(ins: Instruction) -> str:
    first = ins.original.split("\n", 1)[0]
    return first if len(first) <= 80 else first[:77] + "..."


def _located(exc: KobakoError, where: str, ins: Instruction) -> KobakoError:
    """The same kind of error, its message prefixed with the Dockerfile line and instruction."""
    if exc.message.startswith(where):
        return exc
    from kobako.build.dockerfile.parser import DockerfileSyntaxError

    if isinstance(exc, DockerfileSyntaxError):
        return exc
    located = type(exc).__new__(type(exc))
    KobakoError.__init__(located, f"{where}: {_short(ins)}: {exc.message}")
    for name, value in vars(exc).items():
        if name != "message":
            setattr(located, name, value)
    return located

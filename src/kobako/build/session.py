"""What every step of one build shares: the stores, the context, the output, finished stages.

A step module's ``prepare(session, instruction, state)`` returns a :class:`Step`: the parts of its cache
key (None when the step is never cached, as ARG) and the functions that apply it. The executor looks the
key up, and either adopts the cached state or runs ``apply`` on a copy; ``after`` runs either way (it sets
build variables, which are not part of the image).
"""

from __future__ import annotations

import os
import sys

from kobako.errors import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from kobako.build.cache import BuildCache
    from kobako.build.context import SourceTree
    from kobako.build.dockerfile.ast import Dockerfile, Instruction
    from kobako.build.layers import Layers
    from kobako.build.state import StageState
    from kobako.images.service import ImageService


class Step:
    __slots__ = ("after", "apply", "key_parts")

    def __init__(self, key_parts: list | None, apply: Callable[[StageState], None] | None = None,
                 after: Callable[[StageState], None] | None = None) -> None:  # fmt: skip
        self.key_parts = key_parts
        self.apply = apply
        self.after = after


class Output:
    """Step headers, CACHED marks, RUN output; with ``quiet`` nothing but what the caller prints."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stdout

    def line(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()

    def raw(self, data: bytes) -> None:
        if self.quiet:
            return
        buffer = getattr(self.stream, "buffer", None)
        if buffer is not None:
            self.stream.flush()
            buffer.write(data)
            buffer.flush()
        else:
            self.stream.write(data.decode(errors="replace"))
            self.stream.flush()

    def warn(self, text: str) -> None:
        sys.stderr.write(f"WARNING: {text}\n")
        sys.stderr.flush()


class Session:
    def __init__(self, service: ImageService, layers: Layers, cache: BuildCache, context: SourceTree,
                 dockerfile: Dockerfile, out: Output, *, platform: dict, no_cache: bool = False,
                 runtime_root: str = "") -> None:  # fmt: skip
        from kobako import paths

        self.service = service
        self.layers = layers
        self.cache = cache
        self.context = context
        self.dockerfile = dockerfile
        self.out = out
        self.platform = platform
        self.no_cache = no_cache
        self.runtime_root = runtime_root or paths.runtime_root()
        self.state_root = service.root
        self.stages: dict[int, StageState] = {}
        self.current_stage = -1
        self.images: dict[str, StageState] = {}
        self.build_args: dict[str, str] = {}  # --build-arg values
        self.global_args: dict[str, str] = {}  # global ARGs and the automatic platform args
        self.used_args: set[str] = set()  # names some ARG declared
        self.proxy_args: dict[str, str] = {}  # predefined proxy build args: RUN env only

    @property
    def escape(self) -> str:
        return self.dockerfile.escape

    def where(self, ins: Instruction) -> str:
        return f"{os.path.basename(self.dockerfile.path)}:{ins.line}"

    def stage_state(self, ref: str) -> StageState | None:
        """A finished earlier stage named ``ref`` (or numbered, for COPY --from=0)."""
        stage = self.dockerfile.stage_by_name(ref)
        if stage is None and ref.isdigit():
            index = int(ref)
            if index < len(self.dockerfile.stages):
                stage = self.dockerfile.stages[index]
        if stage is None or stage.index >= self.current_stage:
            return None
        return self.stages.get(stage.index)

    def image_state(self, ref: str) -> StageState:
        """A local image as a starting state (kobako build never pulls)."""
        if ref in self.images:
            return self.images[ref]
        from kobako.build.cache import step_key
        from kobako.build.state import StageState

        try:
            image = self.service.resolve(ref)
        except NotFound:
            raise NotFound(f"no such image: {ref} (kobako build uses local images only: pull, load or "
                           "import it first)") from None  # fmt: skip
        state = StageState.from_image(image.config, image.layers, step_key("image", image.id))
        self.images[ref] = state
        return state

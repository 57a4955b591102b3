"""Stage planning (targets, skipped stages, global ARGs), stage state, cache keys, --chmod, CLI pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kobako.build.cache import BuildCache, step_key
from kobako.build.copier import ModeSpec
from kobako.build.dockerfile.parser import parse
from kobako.build.planner import plan
from kobako.build.state import DEFAULT_PATH, StageState
from kobako.errors import InvalidArgument, NotFound

AMD64 = {"os": "linux", "architecture": "amd64"}
DF = """\
ARG BASE=busybox
ARG TAG
FROM ${BASE} AS deps
RUN echo deps
FROM deps AS build
COPY --from=tools /x /x
FROM alpine AS tools
FROM ${BASE}:${TAG:-latest} AS unused
RUN exit 1
FROM scratch AS out
COPY --from=build /a /a
RUN --mount=type=bind,from=0,target=/m true
"""


def names(p) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.name for s in p.stages]


def test_target_defaults_to_last_and_skips_unused() -> None:
    p = plan(parse(DF), {}, "", AMD64, AMD64)
    assert names(p) == ["deps", "build", "out"]  # `tools` comes after `build`: an image, not a stage
    assert p.target.name == "out"
    assert p.total_steps == (1 + 1) + (1 + 1) + (1 + 2)


def test_target_stage_and_its_dependencies() -> None:
    p = plan(parse(DF), {}, "unused", AMD64, AMD64)
    assert names(p) == ["unused"] and p.bases[3] == "busybox:latest"
    assert names(plan(parse(DF), {}, "BUILD", AMD64, AMD64)) == ["deps", "build"]
    with pytest.raises(NotFound, match="target stage 'nope'"):
        plan(parse(DF), {}, "nope", AMD64, AMD64)


def test_global_args_and_build_args() -> None:
    p = plan(parse(DF), {"BASE": "alpine", "TAG": "3"}, "unused", AMD64, AMD64)
    assert p.bases[3] == "alpine:3" and p.global_args["BASE"] == "alpine"
    assert p.global_args["TARGETPLATFORM"] == "linux/amd64" and p.global_args["BUILDARCH"] == "amd64"
    assert {"BASE", "TAG"} <= p.declared


def test_from_expanding_to_nothing_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="expands to nothing"):
        plan(parse("FROM ${NOPE}\n"), {}, "", AMD64, AMD64)


def test_state_env_and_args() -> None:
    s = StageState.from_image({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1", "B=2"]},
                               "rootfs": {"type": "layers", "diff_ids": []}}, [], "k")  # fmt: skip
    assert s.section["Env"][-1] == f"PATH={DEFAULT_PATH}"  # BuildKit adds PATH when missing
    s.set_env("A", "x")
    assert s.section["Env"][0] == "A=x"
    s.args = {"A": "arg", "C": "3"}
    assert s.expansion_env()["A"] == "x"  # ENV wins over ARG
    assert s.run_args() == {"C": "3"}
    child = s.derive("k2")
    child.set_env("D", "4")
    assert "D=4" not in s.section["Env"] and child.args == s.args


def test_from_image_converts_docker_layer_types() -> None:
    s = StageState.from_image({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}},
                              [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                "digest": "sha256:" + "0" * 64, "size": 1}], "k")  # fmt: skip
    assert s.layers[0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"


def test_step_keys_chain() -> None:
    a = step_key("parent", "RUN", ["sh", "-c", "x"])
    assert a == step_key("parent", "RUN", ["sh", "-c", "x"])
    assert a != step_key("other", "RUN", ["sh", "-c", "x"]) and a != step_key(
        "parent", "RUN", ["sh", "-c", "y"]
    )


def test_cache_roundtrip(tmp_path: Path) -> None:
    cache = BuildCache(str(tmp_path))
    assert cache.get("k") is None
    cache.put("k", {"config": {"a": 1}, "layers": []})
    assert cache.get("k") == {"config": {"a": 1}, "layers": []}
    cache.remember_file_digest("/f", (1, 2, 3), "abc")
    assert cache.file_digest("/f", (1, 2, 3)) == "abc" and cache.file_digest("/f", (1, 2, 4)) is None
    cache.close()
    cache = BuildCache(str(tmp_path))
    assert cache.file_digest("/f", (1, 2, 3)) == "abc" and cache.count() == 1
    cache.drop("k")
    assert cache.get("k") is None
    cache.close()


@pytest.mark.parametrize(
    ("spec", "mode", "is_dir", "want"),
    [
        ("755", 0o644, False, 0o755),
        ("0640", 0o777, True, 0o640),
        ("+x", 0o644, False, 0o755),
        ("u=rwX,go=rX", 0o600, True, 0o755),
        ("u=rwX,go=rX", 0o600, False, 0o644),
        ("u=rwX,go=rX", 0o700, False, 0o755),
        ("g=u", 0o740, False, 0o770),
        ("o-r", 0o644, False, 0o640),
        ("a=", 0o777, False, 0o000),
        ("u+s", 0o755, False, 0o4755),
    ],
)
def test_chmod(spec: str, mode: int, is_dir: bool, want: int) -> None:
    assert oct(ModeSpec(spec).apply(mode, is_dir)) == oct(want)


@pytest.mark.parametrize("spec", ["9", "u", "u*x", "77777", "u=q"])
def test_chmod_errors(spec: str) -> None:
    with pytest.raises(InvalidArgument, match="--chmod"):
        ModeSpec(spec)


def test_cli_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    from kobako.cli.build import _pairs

    monkeypatch.setenv("FROM_ENV", "e")
    monkeypatch.delenv("UNSET_ONE", raising=False)
    assert _pairs(["A=1", "B=", "FROM_ENV", "UNSET_ONE", "C=x=y"], "--build-arg", True) == {
        "A": "1", "B": "", "FROM_ENV": "e", "C": "x=y"}  # fmt: skip
    with pytest.raises(InvalidArgument):
        _pairs(["nolabelvalue"], "--label", False)


def test_cli_requires_a_context() -> None:
    from kobako.cli.build import cmd_build

    with pytest.raises(InvalidArgument, match="exactly 1 argument"):
        cmd_build(["-t", "x"])
    assert cmd_build(["--help"]) == 0


def test_images_to_pull_skip_stages_and_scratch() -> None:
    assert plan(parse(DF), {}, "", AMD64, AMD64).images() == ["busybox"]
    assert plan(parse(DF), {"TAG": "1"}, "unused", AMD64, AMD64).images() == ["busybox:1"]


def test_pull_bases_uses_the_registry_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from kobako.build.builder import pull_bases
    from kobako.build.session import Output

    calls: list[tuple[str, str]] = []
    fake = types.ModuleType("kobako.registry.client.pull")
    fake.pull = lambda service, ref, platform: calls.append((ref, platform))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kobako.registry.client.pull", fake)
    pull_bases(object(), ["a:1", "b"], AMD64, Output(quiet=True))  # type: ignore[arg-type]
    assert calls == [("a:1", "linux/amd64"), ("b", "linux/amd64")]

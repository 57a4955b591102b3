"""The build cache (reuse, invalidation from the changed step, --no-cache, GC) and failures (clear messages,
nothing tagged, nothing left mounted or active)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

DOCKERFILE = """\
FROM busybox
ARG MODE=a
COPY base.txt /base.txt
RUN echo run1 > /r1
COPY app/ /app/
RUN echo run2 $MODE > /r2
CMD ["sh"]
"""


def marks(out: str) -> list[str]:
    """Per step after FROM: "C" when reused, "R" when run."""
    steps = re.split(r"^STEP \d+/\d+: ", out, flags=re.M)[2:]
    return ["C" if "\n--> CACHED\n" in "\n" + s else "R" for s in steps]


def test_cache_reuse_and_invalidation(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(DOCKERFILE, {"base.txt": "base", "app/a": "a", "app/b": "b"})
    first = kb.build(ctx, "-t", "c:1")
    assert marks(first.stdout) == ["R", "R", "R", "R", "R", "R"]  # ARG is always evaluated
    image = first.stdout.strip().splitlines()[-1]
    again = kb.build(ctx, "-t", "c:2")
    assert marks(again.stdout) == ["R", "C", "C", "C", "C", "C"]
    assert again.stdout.strip().splitlines()[-1] == image  # same config, same image ID

    os.utime(ctx / "app" / "a", (1, 1))  # times alone do not count
    assert marks(kb.build(ctx).stdout) == ["R", "C", "C", "C", "C", "C"]
    (ctx / "app" / "a").write_text("changed")  # a changed file invalidates from its COPY on
    assert marks(kb.build(ctx).stdout) == ["R", "C", "C", "R", "R", "R"]
    (ctx / "app" / "b").chmod(0o700)  # so does a changed mode
    assert marks(kb.build(ctx).stdout) == ["R", "C", "C", "R", "R", "R"]
    # a build argument is in every later RUN's environment (and history): they all run again, as in Docker
    assert marks(kb.build(ctx, "--build-arg", "MODE=b").stdout) == ["R", "C", "R", "R", "R", "R"]
    assert marks(kb.build(ctx, "--no-cache").stdout) == ["R", "R", "R", "R", "R", "R"]
    assert kb.sh("c:2", "cat /r2") == "run2 a\n"


def test_dockerfile_change_invalidates_from_that_line(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(DOCKERFILE, {"base.txt": "base", "app/a": "a"})
    kb.build(ctx)
    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("echo run2", "echo RUN2"))
    assert marks(kb.build(ctx).stdout) == ["R", "C", "C", "C", "R", "R"]


def test_cache_survives_gc_of_unreferenced_layers(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context("FROM busybox AS b\nRUN echo b > /b\nFROM busybox\nCOPY --from=b /b /b\n")
    kb.build(ctx, "-t", "gc1")
    kb("image", "prune", "-f")  # the builder stage's layer is referenced by no image: GC may collect it
    kb("rmi", "gc1")
    kb("image", "prune", "-f")
    out = kb.build(ctx, "-t", "gc1").stdout
    assert "STEP 2/4" in out and kb.sh("gc1", "cat /b") == "b\n"


def test_failing_run_reports_code_and_output_and_tags_nothing(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context("FROM busybox\nRUN echo good > /g\nRUN echo to-stdout; echo to-stderr >&2; exit 3\n")
    proc = kb.build(ctx, "-t", "failed", check=False)
    assert proc.returncode == 1
    assert "to-stdout\nto-stderr\n" in proc.stdout  # streamed as it ran
    assert (
        "Dockerfile:3: RUN echo to-stdout; echo to-stderr >&2; exit 3: the command exited with code 3"
        in proc.stderr
    )
    quiet = kb.build(ctx, "-q", "-t", "failed", check=False)
    assert (
        quiet.stdout == "" and "code 3\nto-stdout\nto-stderr" in quiet.stderr
    )  # -q: the output is in the error
    assert kb("image", "inspect", "failed", check=False).returncode != 0
    # the step before the failure was cached
    assert "--> CACHED" in kb.build(ctx, check=False).stdout


def test_syntax_error_names_file_line_and_column(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context("FROM busybox\nRUN echo ok\n\n  COPY --chwon=1 a b\n")
    proc = kb.build(ctx, check=False)
    assert proc.returncode == 125 and proc.stdout == ""
    assert re.search(r"kobako: \S*Dockerfile:4:8: unknown flag: --chwon", proc.stderr), proc.stderr
    ctx = context("FROM busybox\nENV X=${unclosed\n")
    proc = kb.build(ctx, check=False)
    assert "Dockerfile:2: ENV X=${unclosed: syntax error: missing '}'" in proc.stderr


def test_missing_sources_and_bad_references(kb, context) -> None:  # type: ignore[no-untyped-def]
    cases = {
        "FROM busybox\nCOPY nothere.txt /x\n": "Dockerfile:2: COPY nothere.txt /x: file not found in build context: nothere.txt",
        "FROM busybox\nCOPY *.nope /x/\n": "'*.nope' matches nothing",
        "FROM busybox\nCOPY a b /dest\n": "must be a directory and end with a /",
        "FROM nosuch:image\n": "no such image: nosuch:image",
        "FROM busybox\nCOPY --from=nostage /x /x\n": "no such image: nostage",
        "FROM busybox\nUSER ghost\nRUN true\n": "unable to find user ghost",
        "FROM busybox\nRUN --network=host true\n": "without a network",
        "FROM busybox\nRUN --mount=type=secret,id=x true\n": "no secret store",
    }
    for dockerfile, message in cases.items():
        proc = kb.build(context(dockerfile, {"a": "a", "b": "b"}), "-t", "nope", check=False)
        assert proc.returncode != 0 and message in proc.stderr, (dockerfile, proc.stderr)
    assert kb("image", "inspect", "nope", check=False).returncode != 0
    proc = kb("build", "--platform", "linux/s390x", str(context("FROM busybox\n")), check=False)
    assert "only for this machine's platform" in proc.stderr


def test_interrupted_build_leaves_nothing(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context("FROM busybox\nRUN echo started && sleep 30\n")
    kobako = str(Path(sys.executable).parent / "kobako")
    proc = subprocess.Popen(
        [kobako, "build", str(ctx)], env=kb.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    seen = b""
    while b"started" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.read1(4096)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert kb.leftovers() == []

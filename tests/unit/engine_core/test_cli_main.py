"""kobako.cli.main: EPIPE on stdout is a reader gone (exit 0), any other EPIPE a failure; the collector off for
`run` only."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

import kobako
from kobako.cli import main as cli_main

SRC = os.path.dirname(os.path.dirname(kobako.__file__))
VERB = """
import os, sys, time, types
sys.path.insert(0, {src!r})
from kobako.cli import main as m
mod = types.ModuleType("kobako_test_verb")
def verb(argv):
    if argv == ["stdout"]:
        time.sleep(0.3)  # the reader is gone by now
        for i in range(100000):
            print(i)
    else:
        r, w = os.pipe()
        os.close(r)
        os.write(w, b"x")  # EPIPE on a pipe of our own, stdout is fine
    return 0
mod.verb = verb
sys.modules["kobako_test_verb"] = mod
m.register("testverb", "kobako_test_verb:verb")
m._load_table = lambda: None
sys.exit(m.main(["testverb", *sys.argv[1:]]))
"""


def _verb(arg: str) -> subprocess.Popen:
    code = VERB.format(src=SRC)
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", code, arg], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip


def test_epipe_on_stdout_is_a_reader_that_left() -> None:
    proc = _verb("stdout")
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `kobako ps | head -1`
    assert proc.wait(timeout=30) == 0
    assert proc.stderr.read() == b""


def test_epipe_elsewhere_is_reported() -> None:
    proc = _verb("internal")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert b"kobako: [Errno 32] Broken pipe" in err


@pytest.mark.parametrize(("target", "enabled"), [("kobako.cli.containers:cmd_run", False),
                                                 ("kobako.cli.containers:cmd_ps", True)])  # fmt: skip
def test_the_collector_is_off_only_for_run_and_create(target: str, enabled: bool) -> None:
    assert "kobako.cli.containers:cmd_create" in cli_main.GC_OFF
    seen: list[bool] = []
    module = type(sys)("kobako_test_gc")
    module.verb = lambda argv: seen.append(gc.isenabled()) or 0  # type: ignore[attr-defined]
    sys.modules["kobako_test_gc"] = module
    saved = dict(cli_main.COMMANDS)
    try:
        cli_main.COMMANDS["gcverb"] = "kobako_test_gc:verb"
        if not enabled:
            cli_main.GC_OFF.add("kobako_test_gc:verb")
        gc.disable()  # as run_and_exit starts
        assert cli_main.main(["gcverb"]) == 0
        assert seen == [enabled]
    finally:
        gc.enable()
        cli_main.GC_OFF.discard("kobako_test_gc:verb")
        cli_main.COMMANDS.clear()
        cli_main.COMMANDS.update(saved)
        del sys.modules["kobako_test_gc"]

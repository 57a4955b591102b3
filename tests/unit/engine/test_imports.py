"""`kobako run` start-up: the engine's option, spec and volume modules must not pull in slow modules."""

from __future__ import annotations

import subprocess
import sys

SLOW = ("re", "json", "typing", "dataclasses", "enum", "pathlib", "shutil", "ipaddress", "inspect")
CODE = f"""
import sys
from kobako.engine import runopts, specgen, volumes
opts, image, cmd = runopts.parse_run_args(["--rm", "-e", "A=1", "-m", "64m", "-v", "/tmp:/t", "busybox", "sh"])
print(",".join(m for m in {SLOW!r} if m in sys.modules))
"""


def test_no_slow_imports() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


RUN_PATH = f"""
import sys
from kobako.cli import containers, main
from kobako.engine import monitor_fork, runopts, service, specgen
from kobako.images import service as images_service
from kobako.snapshots import overlay
from kobako import libc, mount
from kobako.runtime.security import default_seccomp
opts, image, cmd = runopts.parse_run_args(["--rm", "busybox", "/bin/true"])
specgen.capabilities(opts, 0)
print(",".join(m for m in {SLOW!r} + ("collections", "functools", "contextlib", "threading", "importlib")
               if m in sys.modules))
"""


def test_the_run_path_imports_nothing_slow() -> None:
    """What `kobako run --rm IMAGE CMD` imports before its container starts (the launcher's -I -S start)."""
    import kobako

    src = kobako.__path__[0].rsplit("/", 1)[0]
    code = f"import sys; sys.path.insert(0, {src!r})\n" + RUN_PATH
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

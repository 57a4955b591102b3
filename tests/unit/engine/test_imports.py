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

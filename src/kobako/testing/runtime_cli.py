"""Drive the real `kobako-runtime` CLI from tests and benchmarks, with its own --root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def runtime_bin() -> str:
    path = Path(sys.executable).parent / "kobako-runtime"
    return str(path) if path.exists() else shutil.which("kobako-runtime") or "kobako-runtime"


class Runtime:
    """One state root; ``cleanup()`` force-deletes every container left in it."""

    def __init__(self, root: Path, binary: str = "") -> None:
        self.root = root
        self.binary = binary or runtime_bin()

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 60, **kw: object
    ) -> subprocess.CompletedProcess:
        # Files, not pipes: a created container's init inherits our stdio and keeps pipes open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(
                [self.binary, "--root", str(self.root), *args],
                stdout=out,
                stderr=err,
                timeout=timeout,
                check=False,
                **kw,  # type: ignore[arg-type]
            )
            out.seek(0)
            err.seek(0)
            proc.stdout = out.read().decode(errors="replace")
            proc.stderr = err.read().decode(errors="replace")
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.binary} {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid).stdout)

    def cleanup(self) -> None:
        if not self.root.exists():
            return
        for cid in os.listdir(self.root):
            self("delete", "--force", cid, check=False)

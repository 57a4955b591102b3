"""OCI hooks: run a program with the container state on stdin, under a timeout."""

from __future__ import annotations

import os

from kobako.errors import FailedPrecondition
from kobako.oci import jsoncodec


def run(kind: str, hooks: list[dict], state: dict) -> None:
    """Run every hook of one kind in order; the first failure raises FailedPrecondition."""
    if not hooks:
        return
    import subprocess  # only containers with hooks pay for subprocess

    payload = jsoncodec.dumps(state).encode()
    for i, hook in enumerate(hooks):
        path = hook["path"]
        args = hook.get("args") or [path]
        env = dict(e.split("=", 1) for e in hook.get("env", []) if "=" in e)
        timeout = hook.get("timeout")
        try:
            proc = subprocess.run(
                args,
                executable=path,
                input=payload,
                env=env,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise FailedPrecondition(f"{kind} hook #{i} ({path}) timed out after {timeout}s") from None
        except OSError as exc:
            raise FailedPrecondition(f"{kind} hook #{i} ({path}) could not run: {exc.strerror}") from exc
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).decode(errors="replace").strip()
            raise FailedPrecondition(
                f"{kind} hook #{i} ({path}) failed with exit status {proc.returncode}"
                + (f": {detail}" if detail else "")
            )


def run_warn(kind: str, hooks: list[dict], state: dict) -> None:
    """poststart/poststop: a failing hook is logged, not fatal (runtime-spec)."""
    try:
        run(kind, hooks, state)
    except FailedPrecondition as exc:
        os.write(2, f"kobako-runtime: warning: {exc}\n".encode())

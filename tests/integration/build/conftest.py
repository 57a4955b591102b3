"""Fixtures for build tests: a private KOBAKO_ROOT per test with busybox imported, the real `kobako` launcher,
and a teardown that checks nothing is left mounted, no build snapshot is active and no bundle remains."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

KOBAKO = str(Path(sys.executable).parent / "kobako")


class Kobako:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = dict(os.environ, KOBAKO_ROOT=str(root))

    def __call__(self, *args: str, check: bool = True, timeout: float = 120,
                 input: bytes | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run([KOBAKO, *args], stdout=out, stderr=err, timeout=timeout, check=False,
                                  input=input, env=self.env)  # fmt: skip
            out.seek(0)
            err.seek(0)
            proc.stdout = out.read().decode(errors="replace")
            proc.stderr = err.read().decode(errors="replace")
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kobako {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}"
            )
        return proc

    def build(self, context: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self("build", *args, str(context), check=check)

    def sh(self, image: str, script: str, *run_args: str) -> str:
        """Output of ``sh -c script`` in a container of ``image`` (no network, removed after)."""
        return self(
            "run", "--rm", "--network", "none", *run_args, "--entrypoint", "sh", image, "-c", script
        ).stdout

    def config(self, image: str) -> dict:
        return json.loads(self("image", "inspect", image).stdout)[0]

    def history(self, image: str) -> list[dict]:
        from kobako.images.service import ImageService

        svc = ImageService(str(self.root))
        try:
            return svc.resolve(image).config["history"]
        finally:
            svc.close()

    def layers(self, image: str) -> list[list[tarfile.TarInfo]]:
        """The entries of each layer of ``image``, from ``kobako save``."""
        archive = self.root.parent / "saved.tar"
        self("save", "-o", str(archive), image)
        out = []
        with tarfile.open(archive) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            for name in manifest["Layers"]:
                data = tar.extractfile(name).read()  # type: ignore[union-attr]
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as layer:
                    out.append(layer.getmembers())
        archive.unlink()
        return out

    def leftovers(self) -> list[str]:
        found = []
        prefix = str(self.root.resolve()).rstrip("/") + "/"
        with open("/proc/self/mountinfo") as f:
            found += [f"mount {line.split()[4]}" for line in f if line.split()[4].startswith(prefix)]
        db = self.root / "snapshots" / "metadata.db"
        if db.exists():
            conn = sqlite3.connect(str(db))
            try:
                rows = conn.execute("SELECT key FROM snapshots WHERE kind != 'committed'").fetchall()
            finally:
                conn.close()
            found += [f"active snapshot {r[0]}" for r in rows]
        for sub in ("mnt", "run"):
            base = self.root / "build" / sub
            if base.exists():
                found += [f"build/{sub}/{n}" for n in os.listdir(base)]
        runtime = self.root / "run" / "runtime"
        if runtime.exists():
            found += [
                f"runtime state {n}" for n in os.listdir(runtime) if not n.startswith(".")
            ]  # .seccomp: a cache
        return found


@pytest.fixture
def kb(tmp_path: Path, busybox_tar: Path) -> Iterator[Kobako]:
    k = Kobako(tmp_path / "root")
    k("import", "--change", 'CMD ["sh"]', str(busybox_tar), "busybox")
    yield k
    left = k.leftovers()
    if any(item.startswith("mount ") for item in left):
        from kobako.mount import unmount_all

        unmount_all(k.root, detach=True)
    assert left == [], f"left behind: {left}"


@pytest.fixture
def context(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``context(dockerfile, {path: content})`` → a build context directory (a new one each call)."""
    count = [0]

    def make(dockerfile: str, files: dict[str, str | bytes] | None = None) -> Path:
        count[0] += 1
        return _make_context(tmp_path / f"ctx{count[0]}", dockerfile, files)

    return make


def _make_context(ctx: Path, dockerfile: str, files: dict[str, str | bytes] | None = None) -> Path:
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for rel, content in (files or {}).items():
        path = ctx / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return ctx

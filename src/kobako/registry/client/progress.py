"""Per-layer progress of a pull or push: rich bars on a terminal, docker's plain status lines otherwise,
nothing with ``--quiet``. Every method may be called from the transfer threads."""

from __future__ import annotations

import sys
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO


#: statuses after which a blob's bar is full
DONE = frozenset(("Already exists", "Download complete", "Pull complete", "Pushed", "Layer already exists"))


def short(digest: str) -> str:
    return digest.partition(":")[2][:12] or digest[:12]


class Progress:
    """The quiet one, and the interface: ``message`` lines, per-blob ``start``/``advance``/``status``."""

    def message(self, text: str) -> None:
        pass

    def start(self, digest: str, total: int, status: str) -> None:
        pass

    def advance(self, digest: str, n: int) -> None:
        pass

    def reset(self, digest: str, completed: int) -> None:
        """A transfer restarted or resumed at ``completed`` bytes."""

    def status(self, digest: str, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PlainProgress(Progress):
    """``<short id>: <status>`` lines, once per change (what docker prints when stdout is not a terminal)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    def message(self, text: str) -> None:
        self._line(text)

    def start(self, digest: str, total: int, status: str) -> None:
        self._line(f"{short(digest)}: {status}")

    def status(self, digest: str, text: str) -> None:
        self._line(f"{short(digest)}: {text}")


class RichProgress(Progress):
    """One bar per blob with bytes, speed and time left."""

    def __init__(self, out: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as Bars

        self.console = Console(file=out or sys.stdout)
        self.bars = Bars(
            TextColumn("{task.fields[id]}: {task.description:<18}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), console=self.console,
        )  # fmt: skip
        self.bars.start()
        self._tasks: dict[str, object] = {}
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def message(self, text: str) -> None:
        self.bars.console.print(text, highlight=False, markup=False)

    def _task(self, digest: str) -> object:
        with self._lock:
            task = self._tasks.get(digest)
            if task is None:
                task = self.bars.add_task("Waiting", id=short(digest), total=None)
                self._tasks[digest] = task
            return task

    def start(self, digest: str, total: int, status: str) -> None:
        self._totals[digest] = total
        self.bars.update(self._task(digest), total=total, description=status)  # type: ignore[arg-type]

    def advance(self, digest: str, n: int) -> None:
        self.bars.advance(self._task(digest), n)  # type: ignore[arg-type]

    def reset(self, digest: str, completed: int) -> None:
        self.bars.update(self._task(digest), completed=completed)  # type: ignore[arg-type]

    def status(self, digest: str, text: str) -> None:
        task = self._task(digest)
        if text in DONE or text.startswith("Mounted from"):
            total = self._totals.get(digest) or 1
            self.bars.update(task, description=text, total=total, completed=total)  # type: ignore[arg-type]
        else:
            self.bars.update(task, description=text)  # type: ignore[arg-type]

    def close(self) -> None:
        self.bars.stop()


def for_terminal(quiet: bool = False, out: TextIO | None = None) -> Progress:
    """Quiet, rich bars when ``out`` (stdout) is a terminal, plain lines otherwise."""
    if quiet:
        return Progress()
    out = out or sys.stdout
    if out.isatty():
        return RichProgress(out)
    return PlainProgress(out)

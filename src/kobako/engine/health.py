"""Health checks: the configuration (image ``Healthcheck`` or ``--health-*``) and the status machine.

The monitor runs the check every ``Interval`` by exec'ing ``Test`` into the container through the runtime
library (``launch``). Exit 0 → healthy and the failing streak resets; otherwise the streak grows and at
``Retries`` the container is unhealthy. Failures inside ``StartPeriod`` do not count. The last 5 results are
kept (docker's ``State.Health``). Durations in the record are seconds (floats); image configs hold ns.
"""

from __future__ import annotations

import os

from kobako.engine.clock import rfc3339

DEFAULTS = {"Interval": 30.0, "Timeout": 30.0, "Retries": 3, "StartPeriod": 0.0}
KEEP = 5
MAX_OUTPUT = 4096


def _seconds(value: object, from_ns: bool) -> float:
    if value is None:
        return 0.0
    number = float(value)  # type: ignore[arg-type]
    return number / 1e9 if from_ns else number


def from_image(hc: dict | None) -> dict | None:
    """An OCI/docker image config ``Healthcheck`` (durations in ns) → our record shape, or None."""
    if not hc or not hc.get("Test") or hc["Test"][0] == "NONE":
        return None
    out: dict = {"Test": list(hc["Test"])}
    for key in ("Interval", "Timeout", "StartPeriod"):
        out[key] = _seconds(hc.get(key), True) or DEFAULTS[key]
    out["Retries"] = int(hc.get("Retries") or DEFAULTS["Retries"])
    return out


def from_options(option: object, image_hc: dict | None, disabled: bool = False) -> dict | None:
    """``--health-*`` (whatever shape run options carry) over the image's check; ``--no-healthcheck`` wins."""
    if disabled:
        return None
    base = from_image(image_hc) or {}
    if option is None:
        return base or None
    get = option.get if isinstance(option, dict) else (lambda k, d=None: getattr(option, k, d))  # type: ignore[union-attr]
    test = get("test") or get("Test") or base.get("Test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not test or test[0] == "NONE":
        return None
    out = dict(DEFAULTS, **base)
    out["Test"] = list(test)
    for key, attr in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start_period")):
        value = get(attr, None)
        if value is None:
            value = get(key, None)
        if value:
            out[key] = _seconds(value, float(value) > 1e6)  # ns when huge (docker API shape), else seconds
    retries = get("retries", None) or get("Retries", None)
    if retries:
        out["Retries"] = int(retries)
    return out


def command(test: list[str]) -> list[str]:
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test[1:]) if test[0] == "CMD" else list(test)


class HealthState:
    def __init__(self, config: dict, saved: dict | None = None) -> None:
        self.config = config
        self.status = "starting"
        self.failing_streak = 0
        self.log: list[dict] = []
        if saved:
            self.status = saved.get("Status", "starting")
            self.failing_streak = int(saved.get("FailingStreak", 0))
            self.log = list(saved.get("Log", []))

    def record(self, start: str, exit_code: int, output: str, in_start_period: bool) -> None:
        self.log = [*self.log, {"Start": start, "End": rfc3339(), "ExitCode": exit_code, "Output": output}][
            -KEEP:
        ]
        if exit_code == 0:
            self.status = "healthy"
            self.failing_streak = 0
            return
        if in_start_period and self.status == "starting":
            return
        self.failing_streak += 1
        if self.failing_streak >= int(self.config.get("Retries", 3)):
            self.status = "unhealthy"

    def to_dict(self) -> dict:
        return {"Status": self.status, "FailingStreak": self.failing_streak, "Log": self.log}


def launch(runtime_root: str, container_id: str, args: list[str], out_fd: int, pid_file: str) -> int:
    """Exec ``args`` in the container with stdout and stderr on ``out_fd``; return its pid.

    The exec'd process is a child of the runtime's short-lived joiner, so it is reparented to the caller,
    which must be a child subreaper (the monitor is) to reap it. stdio is passed by fd inheritance: the
    caller's fds 1 and 2 point at ``out_fd`` during the call (the monitor is single-threaded).
    """
    from kobako.runtime.lifecycle.exec import ExecOptions, container_spec, exec_process, process_from_args

    base = container_spec(runtime_root, container_id).get("process", {})
    proc = process_from_args(base, args, tty=False, cwd=None, env=[], user=None, caps=[], no_new_privs=None)
    import _signal

    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        for signum in (13, 25):  # SIGPIPE, SIGXFSZ: ignored by Python, and SIG_IGN survives execve
            _signal.signal(signum, _signal.SIG_DFL)
        exec_process(runtime_root, container_id, ExecOptions(proc, detach=True, pid_file=pid_file))
    finally:
        for signum in (13, 25):
            _signal.signal(signum, _signal.SIG_IGN)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
    with open(pid_file) as f:
        return int(f.read().strip())


class Runner:
    """Runs the checks of one started task inside the monitor's loop (which reaps and polls for it)."""

    def __init__(self, monitor: object, config: dict) -> None:
        import time

        self.mon = monitor
        self.config = config
        self.state = HealthState(config)
        self.next_at = time.monotonic() + float(config.get("Interval", 30.0))
        self.pid = 0
        self.fd = -1
        self.output = b""
        self.deadline_at = 0.0
        self.start = ""
        self.timed_out = False

    def deadline(self) -> float:
        return self.deadline_at if self.pid else self.next_at

    def register(self, poller: object) -> None:
        if self.fd >= 0:
            poller.register(self.fd, 1)  # type: ignore[attr-defined]  # POLLIN

    def owns(self, fd: int) -> bool:
        return fd >= 0 and fd == self.fd

    def read(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            os.close(self.fd)
            self.fd = -1
        elif len(self.output) < MAX_OUTPUT:
            self.output += data[: MAX_OUTPUT - len(self.output)]

    def tick(self, now: float) -> None:
        if self.pid and now >= self.deadline_at and not self.timed_out:
            self.timed_out = True
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
        elif not self.pid and now >= self.next_at:
            self.launch(now)

    def launch(self, now: float) -> None:
        from kobako.errors import KobakoError

        mon = self.mon
        r, w = os.pipe2(os.O_CLOEXEC)
        self.start = rfc3339()
        try:
            self.pid = launch(mon.root, mon.rec.id, command(self.config["Test"]), w,  # type: ignore[attr-defined]
                              mon.store.path(mon.rec.id, "health.pid"))  # type: ignore[attr-defined]  # fmt: skip
        except KobakoError as exc:
            os.close(r)
            self.next_at = now + float(self.config.get("Interval", 30.0))
            if "paused" not in str(exc):
                self._record(1, str(exc))
            return
        finally:
            os.close(w)
        os.set_blocking(r, False)
        self.fd, self.output, self.timed_out = r, b"", False
        self.deadline_at = now + float(self.config.get("Timeout", 30.0))

    def exited(self, pid: int, code: int) -> None:
        if pid != self.pid or not pid:
            return
        self.pid = 0
        while self.fd >= 0:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EAGAIN: a grandchild still holds the pipe; what is there is all we wait for
                data = b""
            if not data:
                os.close(self.fd)
                self.fd = -1
            elif len(self.output) < MAX_OUTPUT:
                self.output += data[: MAX_OUTPUT - len(self.output)]
        if self.timed_out:
            self._record(-1, f"Health check exceeded timeout ({self.config.get('Timeout')}s)")
        else:
            self._record(code, self.output.decode("utf-8", "replace"))

    def _record(self, code: int, output: str) -> None:
        import time

        mon = self.mon
        in_start = time.monotonic() - mon.started < float(self.config.get("StartPeriod", 0.0))  # type: ignore[attr-defined]
        self.state.record(self.start, code, output, in_start)
        self.next_at = time.monotonic() + float(self.config.get("Interval", 30.0))
        mon.st.health = self.state.to_dict()  # type: ignore[attr-defined]
        from kobako.engine import tasks

        tasks.save(mon.store, mon.rec.id, mon.st)  # type: ignore[attr-defined]

    def cancel(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            self.pid = 0
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

"""An isolated Podman for interop tests: podman and conmon drive an OCI runtime (kobako-runtime, runc).

Every call gets the same global flags, and an environment that points podman's configuration, storage,
run state, locks and events into one temporary directory D, so nothing is written under /etc/containers,
/var/lib/containers, /run/containers, /dev/shm or $HOME:

    podman --root D/storage --runroot D/run --storage-driver overlay|vfs --cgroup-manager cgroupfs
           --events-backend file --tmpdir D/tmp --network-config-dir D/net --volumepath D/volumes
    CONTAINERS_CONF=D/containers.conf          cgroupfs, file events, file locks (not /dev/shm),
                                               kobako-runtime listed in runtime_supports_json
    CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF, HOME, XDG_*, TMPDIR   all under D

``run_flags()`` are what every ``podman run`` needs on a host with no network and without
CAP_SYS_RESOURCE (podman would raise nofile/nproc above the hard limits otherwise), plus a cgroup parent
unique to this instance. ``close()`` removes every container and image, kills what is left in that
cgroup parent, removes it, unmounts anything still mounted under D and deletes D.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

CGROUP_ROOT = "/sys/fs/cgroup"

_CONTAINERS_CONF = """\
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
runtime_supports_json = ["crun", "runc", "kobako-runtime"]

[network]
network_config_dir = "{net}"
"""

_STORAGE_CONF = """\
[storage]
driver = "{driver}"
runroot = "{runroot}"
graphroot = "{graphroot}"
"""


def podman_bin() -> str | None:
    return shutil.which("podman")


def storage_driver() -> str:
    """overlay when the kernel has it, vfs (a plain copy per container) otherwise."""
    try:
        with open("/proc/filesystems") as f:
            if any(line.split()[-1] == "overlay" for line in f if line.strip()):
                return "overlay"
    except OSError:
        pass
    return "vfs"


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace, deepest first."""
    prefix = str(path).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def cgroup_dirs_named(fragment: str) -> list[str]:
    """Every cgroup directory, in every hierarchy, whose name contains ``fragment``."""
    found = []
    for dirpath, dirs, _files in os.walk(CGROUP_ROOT):
        found.extend(os.path.join(dirpath, d) for d in dirs if fragment in d)
    return found


def processes_mentioning(fragment: str) -> list[str]:
    """``pid: cmdline`` of every live process whose command line contains ``fragment``."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline:
            found.append(f"{entry}: {cmdline.strip()}")
    return found


class Podman:
    """One private podman installation under ``base``; call it like the CLI: ``podman("ps", "-a")``."""

    def __init__(self, base: Path, binary: str = "") -> None:
        self.base = base
        self.binary = binary or podman_bin() or "podman"
        self.driver = storage_driver()
        self.cgroup_parent = f"/kobako-interop-{uuid.uuid4().hex[:10]}"
        dirs = {n: base / n for n in ("storage", "run", "tmp", "net", "volumes", "home", "xdg", "vartmp")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.storage, self.runroot, self.tmpdir = dirs["storage"], dirs["run"], dirs["tmp"]
        (base / "containers.conf").write_text(_CONTAINERS_CONF.format(net=dirs["net"]))
        (base / "storage.conf").write_text(
            _STORAGE_CONF.format(driver=self.driver, runroot=self.runroot, graphroot=self.storage)
        )
        (base / "registries.conf").write_text("unqualified-search-registries = []\n")
        xdg = dirs["xdg"]
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(base / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(base / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(base / "registries.conf"),
            "HOME": str(dirs["home"]),
            "XDG_CONFIG_HOME": str(xdg / "config"),
            "XDG_DATA_HOME": str(xdg / "data"),
            "XDG_RUNTIME_DIR": str(xdg / "run"),
            "TMPDIR": str(dirs["vartmp"]),
        }
        self.global_flags = [
            "--root", str(self.storage), "--runroot", str(self.runroot),
            "--storage-driver", self.driver, "--cgroup-manager", "cgroupfs", "--events-backend", "file",
            "--tmpdir", str(self.tmpdir), "--network-config-dir", str(dirs["net"]),
            "--volumepath", str(dirs["volumes"]),
        ]  # fmt: skip

    def run_flags(self) -> list[str]:
        """Flags every ``podman run`` needs here: no network, limits within the hard ones, no pulls."""
        return [
            "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
            "--pull", "never", "--cgroup-parent", self.cgroup_parent,
        ]  # fmt: skip

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 60, stdin: int | None = subprocess.DEVNULL
    ) -> subprocess.CompletedProcess:
        # Files, not pipes: conmon outlives `podman run -d` and would hold a pipe open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(
                [self.binary, *self.global_flags, *args],
                stdin=stdin, stdout=out, stderr=err, env=self.env, timeout=timeout, check=False,
            )  # fmt: skip
            out.seek(0)
            err.seek(0)
            proc.stdout = out.read().decode(errors="replace")
            proc.stderr = err.read().decode(errors="replace")
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def import_rootfs(self, rootfs: Path, name: str) -> str:
        """Make image ``name`` from a root filesystem directory with no registry: tar + ``podman import``."""
        archive = self.base / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(str(rootfs), arcname=".")
        try:
            return self("import", "--change", 'CMD ["sh"]', str(archive), name).stdout.strip()
        finally:
            archive.unlink()

    def logging_runtime(self, binary: str, name: str = "kobako-runtime") -> tuple[str, Path]:
        """A wrapper named ``name`` that appends each invocation's argv (tab-separated) to a log, then
        execs ``binary``. Podman keys runtime features (JSON logs) on the runtime's file name."""
        bindir = self.base / "wrapped"
        bindir.mkdir(exist_ok=True)
        log = bindir / f"{name}.calls"
        wrapper = bindir / name
        wrapper.write_text(
            "#!/bin/sh\n"
            f"{{ for a in \"$@\"; do printf '%s\\t' \"$a\"; done; printf '\\n'; }} >> '{log}'\n"
            f"exec '{binary}' \"$@\"\n"
        )
        wrapper.chmod(0o755)
        return str(wrapper), log

    def close(self) -> list[str]:
        """Remove everything this instance made; return what could not be removed (should be empty)."""
        self("rm", "--all", "--force", "--time", "0", check=False)
        self("rmi", "--all", "--force", check=False)
        self._remove_cgroup_parent()
        for point in mounts_under(self.base):
            subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
        left = [f"mount {m}" for m in mounts_under(self.base)]
        left += [f"cgroup {d}" for d in cgroup_dirs_named(self.cgroup_parent.lstrip("/"))]
        left += [f"process {p}" for p in processes_mentioning(str(self.base))]
        shutil.rmtree(self.base, ignore_errors=True)
        return left

    def _remove_cgroup_parent(self) -> None:
        """Kill whatever still runs in this instance's cgroup parent (conmon, containers), then rmdir it."""
        for hierarchy in os.listdir(CGROUP_ROOT):
            top = os.path.join(CGROUP_ROOT, hierarchy, self.cgroup_parent.lstrip("/"))
            if not os.path.isdir(top):
                continue
            for dirpath, _dirs, _files in os.walk(top, topdown=False):
                _kill_members(dirpath)
                for _ in range(200):
                    try:
                        os.rmdir(dirpath)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.01)


def _kill_members(cgroup: str) -> None:
    try:
        with open(os.path.join(cgroup, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

"""`kobako run --rm --network none IMAGE /bin/true` against `podman --runtime runc run --rm --network none` (and
docker when a dockerd can be started) on the same busybox image: alternating runs, median of N each, markdown
table. Both get a network namespace of their own with only loopback in it (like for like, whatever either
engine's default network becomes).

``--trace``: seven more `kobako run`s, traced: CLOCK_MONOTONIC stamps around the steps that matter in the CLI,
its monitor and the container's init, as milliseconds since the launch; the median run is printed (the
"clock_gettime breakdown"; the tracer itself adds about 4 ms). Traced runs name the CLI's start-up cache as the
launcher does; the functions of the modules it preloads are wrapped right after it ran.

``--network``: instead, the extra time of ``--network bridge`` over ``--network none`` (kobako only, in a
network namespace made here and deleted after); with ``--trace``, seven traced bridge runs (the network
library's steps stamped too).

Podman gets isolated storage (kobako.testing.podman), cgroupfs, file events, and the ulimit flags this
host needs. Usage: python benchmarks/engine_run.py [--runs 20] [--trace] [--network]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from kobako.testing.busybox import make_rootfs

KOBAKO = str(Path(sys.executable).parent / "kobako")
# The kobako launcher's start-up cache (scripts/write_launchers.py)
STARTUP_CACHE = str(Path(sys.executable).parent.parent / "share" / "kobako" / "kobako")

# The CLI as the launcher starts it (-I -S, the start-up cache named), with a meta-path hook that wraps the
# functions named in STEPS as their modules load (and, for modules the cache preloads, right after it): each call writes "pid ms >name" and "pid ms <name" (ms since the launch). The CLI keeps
# the file open; forked processes reopen it per stamp (the monitor closes the fds it inherits; the container's
# init cannot see it after pivot_root).
TRACER = r"""
import os, sys, time
out, t0, paths, steps = sys.argv[1], float(sys.argv[2]), sys.argv[3].split(":"), eval(sys.argv[4])
sys.path[0:0] = paths
cli, fd = os.getpid(), os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
CACHE, wrapped = sys.argv[5], set()
def stamp(event):
    line = f"{os.getpid()} {(time.clock_gettime(time.CLOCK_MONOTONIC) - t0) * 1000:.2f} {event}\n".encode()
    if os.getpid() == cli:
        os.write(fd, line)
        return
    try:  # the container's init loses sight of the file once it is inside the container's root
        f = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError:
        return
    os.write(f, line)
    os.close(f)
def wrap(owner, name, label):
    inner = owner.__dict__[name]
    def traced(*a, **k):
        stamp(">" + label)
        try:
            return inner(*a, **k)
        finally:
            stamp("<" + label)
    setattr(owner, name, traced)
finder = sys.modules["_frozen_importlib_external"].PathFinder
class Hook:
    def find_spec(self, fullname, path, target=None):
        if fullname not in steps:
            return None
        spec = finder.find_spec(fullname, path)
        load = spec.loader.exec_module
        def exec_module(module):
            load(module)
            wrapped.add(fullname)
            for dotted in steps[fullname]:
                owner, _, name = dotted.rpartition(".")
                wrap(getattr(module, owner) if owner else module, name, dotted)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Hook())
import kobako.startupcache as cache  # as the kobako launcher does; modules it preloads are wrapped after
if os.path.isdir(CACHE):
    cache.LATER = (CACHE, ["run"])
preload_later = cache.preload_later
def preload_then_wrap(group):
    ran = preload_later(group)
    for fullname, dotted_names in steps.items():
        module = sys.modules.get(fullname)
        if module is not None and fullname not in wrapped:
            wrapped.add(fullname)
            for dotted in dotted_names:
                owner, _, name = dotted.rpartition(".")
                wrap(getattr(module, owner) if owner else module, name, dotted)
    return ran
cache.preload_later = preload_then_wrap
stamp("interpreter up")
from kobako.cli.main import run_and_exit
sys.argv = ["kobako", *sys.argv[6:]]
run_and_exit()
"""
STEPS = {
    "kobako.cli.containers": ["_run", "_remove_quietly"],
    "kobako.engine.monitor_fork": ["Prefork.__init__", "Prefork.go", "_preload"],
    "kobako.engine.runopts": ["parse_run_args"],
    "kobako.engine.service": ["create", "start", "remove", "unmount_rootfs"],
    "kobako.images.service": ["ImageService.resolve", "ImageService.prepare_rootfs"],
    "kobako.mount": ["mount_all"],
    "kobako.engine.specgen": ["generate"],
    "kobako.engine.attach": ["wait_started"],
    "kobako.cli.containers_io": ["attach_loop"],
    "kobako.snapshots.dirstore": ["DirSnapshotter.remove"],
    "kobako.engine.containers": ["ContainerStore.remove"],
    "kobako.engine.monitor": ["Monitor.run", "Monitor.exited", "Monitor.handed_over"],
    "kobako.runtime.lifecycle.create": ["create", "_make_cgroup"],
    "kobako.runtime.lifecycle.start": ["release"],
    "kobako.runtime.lifecycle.delete": ["delete"],
    "kobako.runtime.rootfs": ["RootfsBuilder.prepare"],
    # networking (`--network --trace`): the engine side, then the library's steps
    "kobako.engine.monitor_net": ["setup", "teardown", "open_service"],
    "kobako.engine.network.sandbox": ["setup", "teardown", "_attach", "_publish", "_refresh_hosts", "detach"],
    "kobako.engine.network.service": [
        "NetworkService.__init__",
        "NetworkService.ensure_kernel",
        "NetworkService.add_elements",
        "NetworkService.close",
    ],
    "kobako.engine.network.netns": ["create", "remove"],
    "kobako.engine.network.netlink": ["load_messages"],
    "kobako.engine.network.bridge": ["ensure_bridge", "add_veth", "configure_inside", "delete_link"],
    "kobako.engine.network.fastpath": ["attach", "forget", "_load", "_maps", "_attach_ingress"],
    "kobako.engine.network.portmap": ["add_elements", "delete_elements", "ensure_table"],
    "kobako.engine.network.dns": ["refresh"],
}


def timed(cmd: list[str], env: dict[str, str]) -> float | None:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(
            f"# {cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-300:]}\n"
        )
        return None
    return elapsed


def trace(env: dict[str, str], runs: int = 7, network: str = "none", enter: list[str] | None = None) -> str:
    """``runs`` traced `kobako run --rm`s (see TRACER); the stamps of the median one, in time order, as a
    markdown table."""
    import sysconfig

    import kobako

    src = os.path.dirname(os.path.dirname(kobako.__file__))
    argv = ["run", "--rm", "--network", network, "busybox", "/bin/true"]
    traced: list[tuple[float, list[list[str]]]] = []
    for _ in range(runs):
        time.sleep(0.3)  # let what ran before settle (podman leaves cleanup processes behind)
        with tempfile.NamedTemporaryFile(prefix="kobako-trace-") as out:
            t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
            subprocess.run([*(enter or []), sys.executable, "-I", "-S", "-c", TRACER, out.name, repr(t0),
                            f"{src}:{sysconfig.get_paths()['purelib']}", repr(STEPS), STARTUP_CACHE, *argv],
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True)  # fmt: skip
            total = (time.clock_gettime(time.CLOCK_MONOTONIC) - t0) * 1000
            time.sleep(0.2)  # the monitor's last stamps come after the CLI exits
            traced.append((total, [line.split(" ", 2) for line in Path(out.name).read_text().splitlines()]))
    traced.sort(key=lambda run: run[0])
    total, lines = traced[len(traced) // 2]
    cli = lines[0][0]
    names: dict[str, str] = {cli: "cli"}
    rows = ["| ms | process | step |", "|---|---|---|"]
    for pid, ms, event in sorted(lines, key=lambda line: float(line[1])):
        who = names.setdefault(pid, "init" if pid == "1" else "monitor")
        rows.append(f"| {float(ms):.2f} | {who} | {event} |")
    rows.append(f"| {total:.2f} | | the CLI has exited (as the benchmark sees it) |")
    return "\n".join(rows)


def docker_note() -> str:
    if not shutil.which("dockerd"):
        return "docker: skipped (dockerd is not installed; Debian's docker.io provides it)"
    return "docker: skipped (starting a private dockerd is not automated here yet)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--trace", action="store_true", help="also trace one kobako run (clock_gettime stamps)"
    )
    parser.add_argument(
        "--network", action="store_true",
        help="instead: the extra time of `--network bridge` over `--network none` (kobako only, inside a "
        "network namespace made here and deleted after)",
    )  # fmt: skip
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    if args.network:
        return network_overhead(args.runs, args.trace)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # benchmark the cached-bytecode start, as installed
    with tempfile.TemporaryDirectory(prefix="kobako-bench-engine-") as tmp:
        base = Path(tmp)
        rootfs = Path(make_rootfs(str(base / "rootfs")))
        archive = base / "busybox.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(str(rootfs), arcname=".")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["KOBAKO_ROOT"] = str(base / "kobako")
        subprocess.run([KOBAKO, "import", str(archive), "busybox"], env=env, check=True, capture_output=True)
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "kobako": ([KOBAKO, "run", "--rm", "--network", "none", "busybox", "/bin/true"], env),
        }
        podman = None
        if shutil.which("podman") and shutil.which("runc"):
            from kobako.testing.podman import Podman

            podman = Podman(base / "podman")
            podman.import_rootfs(rootfs, "localhost/busybox")
            cmd = [podman.binary, *podman.global_flags, "--runtime", "runc", "run", "--rm", *podman.run_flags(),
                   "localhost/busybox", "/bin/true"]  # fmt: skip
            commands["podman (runc)"] = (cmd, podman.env)
        try:
            for cmd, cenv in commands.values():  # warm caches once, unmeasured
                timed(cmd, cenv)
            samples: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, (cmd, cenv) in commands.items():
                    t = timed(cmd, cenv)
                    if t is not None:
                        samples[name].append(t)
            traced = trace(env) if args.trace else ""
        finally:
            left = podman.close() if podman is not None else []
    medians = {name: statistics.median(s) * 1000 for name, s in samples.items() if s}
    base_ms = medians.get("podman (runc)")
    print(f"| engine | median ms ({args.runs} runs) | ratio to podman |")
    print("|---|---|---|")
    for name, ms in medians.items():
        print(f"| {name} | {ms:.1f} | {f'{ms / base_ms:.2f}' if base_ms else 'n/a'} |")
    print(f"\n{docker_note()}")
    if traced:
        print(f"\nOne traced run (ms since the launch):\n\n{traced}")
    if left:
        print(f"\npodman left behind: {left}", file=sys.stderr)
    return 0


def network_overhead(runs: int, traced: bool = False) -> int:
    """Median `run --rm busybox /bin/true` with --network none and with --network bridge, alternated, in a
    network namespace of its own (bridge, veths and nftables rules never touch the host's). ``traced``: then
    the stamps of the median of seven traced bridge runs (see TRACER; the network library's steps too)."""
    import uuid

    ns = "kbbench-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        with tempfile.TemporaryDirectory(prefix="kobako-bench-net-") as tmp:
            base = Path(tmp)
            rootfs = Path(make_rootfs(str(base / "rootfs")))
            archive = base / "busybox.tar"
            with tarfile.open(archive, "w") as tar:
                tar.add(str(rootfs), arcname=".")
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["KOBAKO_ROOT"] = str(base / "kobako")
            env["KOBAKO_BRIDGE_SUBNET"] = "10.250.0.0/24"
            enter = ["nsenter", f"--net=/run/netns/{ns}"]
            subprocess.run([*enter, KOBAKO, "import", str(archive), "busybox"], env=env, check=True,
                           capture_output=True)  # fmt: skip
            cmds = {mode: [*enter, KOBAKO, "run", "--rm", "--network", mode, "busybox", "/bin/true"]
                    for mode in ("none", "bridge")}  # fmt: skip
            for cmd in cmds.values():
                timed(cmd, env)  # warm caches, make the default network's bridge and nftables table
            samples: dict[str, list[float]] = {mode: [] for mode in cmds}
            for _ in range(runs):
                for mode, cmd in cmds.items():
                    t = timed(cmd, env)
                    if t is not None:
                        samples[mode].append(t)
            table = trace(env, network="bridge", enter=enter) if traced else ""
            for entry in (base / "kobako" / "run" / "netns").glob("*"):
                subprocess.run(["umount", "-l", str(entry)], capture_output=True, check=False)
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
    med = {mode: statistics.median(s) * 1000 for mode, s in samples.items() if s}
    print(f"| kobako run --rm busybox /bin/true | median ms ({runs} runs, alternated) |")
    print("|---|---|")
    for mode, ms in med.items():
        print(f"| --network {mode} | {ms:.1f} |")
    if len(med) == 2:
        print(f"| bridge - none | {med['bridge'] - med['none']:.1f} |")
    if traced:
        print(f"\nOne traced bridge run (ms since the launch):\n\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What `kobako info` and the Engine API's ``/info`` report about this host and its state root."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.images.service import ImageService


def container_states(root: str) -> list[tuple[str, str, str]]:
    """(id, status, raw record text) of every container record (as last written: no kernel check)."""
    from kobako.errors import InvalidArgument
    from kobako.oci import jsoncodec

    base = os.path.join(root, "containers")
    try:
        ids = sorted(os.listdir(base))
    except FileNotFoundError:
        return []
    out = []
    for cid in ids:
        if cid.startswith(".") or not os.path.isdir(os.path.join(base, cid)):  # .names: the name index
            continue
        status, record = "", ""
        try:
            with open(os.path.join(base, cid, "state.json"), "rb") as f:
                state = jsoncodec.loads(f.read(), "state")
            status = str(state.get("status", "")) if isinstance(state, dict) else ""
        except (OSError, InvalidArgument):
            pass
        try:
            with open(os.path.join(base, cid, "config.json"), errors="replace") as f:
                record = f.read()
        except OSError:
            pass
        out.append((cid, status, record))
    return out


def info(svc: ImageService) -> dict:
    from kobako import __version__, paths
    from kobako.cgroups.hierarchy import detect
    from kobako.images.unpack import snapshotter_kind

    containers = container_states(svc.root)
    running = sum(1 for c in containers if c[1] == "running")
    paused = sum(1 for c in containers if c[1] == "paused")
    return {
        "ServerVersion": __version__,
        "Containers": len(containers),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": len(containers) - running - paused,
        "Images": len({r.image_id for r in svc.store.list()}),
        "Driver": snapshotter_kind(svc.root),
        "CgroupVersion": detect()[1:],
        "KobakoRootDir": svc.root,
        "RunRootDir": paths.run_root(),
        "RuntimeRootDir": paths.runtime_root(),
        "OperatingSystem": os_name(),
        "KernelVersion": os.uname().release,
        "Architecture": os.uname().machine,
        "NCPU": os.cpu_count() or 0,
    }


def os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return "Linux"

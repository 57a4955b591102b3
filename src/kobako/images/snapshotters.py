"""Which snapshotter a state root uses, and opening it: ``open_snapshotter(state_root)``.

Chosen once per root (recorded in ``<root>/snapshotter``; ``KOBAKO_SNAPSHOTTER=overlay|native`` overrides):
overlay where the kernel has it and the root is not itself on an overlay, else the copying native one. A
module of its own so that opening a snapshotter (every `kobako run`) does not import the unpacker.
"""

from __future__ import annotations

import os

from kobako.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from kobako.snapshots.base import Snapshotter

SNAPSHOTTERS = ("overlay", "native")


def _fs_type(path: str) -> str:
    """Filesystem type of the mount holding ``path`` (longest mount point prefix in mountinfo)."""
    path = os.path.realpath(path)
    best, kind = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point = left.split(" ")[4].replace("\\040", " ")
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, kind = point, right.split(" ")[0]
    return kind


def _detect(root: str) -> str:
    override = os.environ.get("KOBAKO_SNAPSHOTTER", "")
    if override:
        if override not in SNAPSHOTTERS:
            raise InvalidArgument(f"KOBAKO_SNAPSHOTTER={override!r}: want one of {', '.join(SNAPSHOTTERS)}")
        return override
    try:
        with open("/proc/filesystems") as f:
            has_overlay = any(line.split()[-1] == "overlay" for line in f if line.strip())
    except OSError:
        has_overlay = False
    # trusted.* xattrs (overlay whiteouts, opaque dirs) need root; overlay cannot stack on overlay
    if has_overlay and os.geteuid() == 0 and _fs_type(root) not in ("overlay", "aufs", "fuse.fuse-overlayfs"):
        return "overlay"
    return "native"


def snapshotter_kind(state_root: str) -> str:
    """The snapshotter this state root uses: chosen once (recorded in ``<root>/snapshotter``), then kept."""
    path = os.path.join(state_root, "snapshotter")
    try:
        with open(path) as f:
            kind = f.read().strip()
        if kind in SNAPSHOTTERS:
            return kind
    except FileNotFoundError:
        pass
    os.makedirs(state_root, exist_ok=True)
    kind = _detect(state_root)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(kind + "\n")
    try:
        os.link(tmp, path)  # first writer wins; a racing process reads the winner's choice
    except FileExistsError:
        os.unlink(tmp)
        with open(path) as f:
            return f.read().strip()
    os.unlink(tmp)
    return kind


def open_snapshotter(state_root: str) -> Snapshotter:
    root = os.path.join(state_root, "snapshots")
    if snapshotter_kind(state_root) == "overlay":
        from kobako.snapshots.overlay import OverlaySnapshotter

        return OverlaySnapshotter(root)
    from kobako.snapshots.native import NativeSnapshotter

    return NativeSnapshotter(root)

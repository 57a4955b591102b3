"""Snapshotters: layered filesystem trees described by mounts (overlay.py, native.py) over a SQLite metastore."""

from kobako.snapshots.base import Info, Kind, Snapshotter, Usage

__all__ = ["Info", "Kind", "Snapshotter", "Usage"]

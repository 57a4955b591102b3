"""The copying snapshotter, for filesystems overlayfs cannot stack on (or cannot be an upper dir on).

A new snapshot starts as a full copy of its parent's tree (see :mod:`kobako.snapshots.copier`), so it needs no
overlay at mount time: every mount is a bind mount of ``snapshots/<id>/fs`` (read-only for views). Layers are
applied to it in plain mode, where whiteouts delete files; diffs are taken by comparing with the parent's tree.
"""

from __future__ import annotations

import os

from kobako.mount import Mount
from kobako.snapshots.base import Kind
from kobako.snapshots.copier import copy_tree
from kobako.snapshots.dirstore import DirSnapshotter
from kobako.snapshots.storage import Record


class NativeSnapshotter(DirSnapshotter):
    def _populate(self, new_dir: str, rec: Record) -> None:
        fs = os.path.join(new_dir, "fs")
        os.mkdir(fs, 0o755)
        if rec.parents:
            copy_tree(self.fs_dir(rec.parents[0]), fs)

    def _mounts(self, rec: Record) -> list[Mount]:
        mode = "ro" if rec.kind == Kind.VIEW else "rw"
        return [Mount("bind", self.fs_dir(rec.id), options=[mode, "rbind"])]

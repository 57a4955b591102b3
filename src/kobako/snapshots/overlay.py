"""The overlayfs snapshotter: each snapshot is one directory; a chain of them is an overlay mount.

``snapshots/<id>/fs`` holds the snapshot's own changes (the overlay upper dir while it is active, a lower dir
once committed) and ``snapshots/<id>/work`` is overlay's work dir. The mounts returned are:

* active, no parent: a read-write bind mount of ``fs``;
* active with parents: ``overlay`` with ``upperdir=fs``, ``workdir=work`` and the parents' ``fs`` as
  ``lowerdir`` (nearest first);
* view of one parent: a read-only bind mount of the parent's ``fs``; view of several: a read-only ``overlay``
  of lowerdirs only; view of nothing: a read-only bind of its own empty ``fs``.

To unpack a layer without mounting, apply it to the ``upperdir`` option of the returned overlay mount (or the
bind source) in overlay mode (``kobako.archive.tar.apply_layer(..., overlay=True, lowers=...)``).
"""

from __future__ import annotations

import os

from kobako.mount import Mount
from kobako.snapshots.base import Kind
from kobako.snapshots.dirstore import DirSnapshotter
from kobako.snapshots.storage import Record


class OverlaySnapshotter(DirSnapshotter):
    def _populate(self, new_dir: str, rec: Record) -> None:
        os.mkdir(os.path.join(new_dir, "fs"), 0o755)
        os.mkdir(os.path.join(new_dir, "work"), 0o711)

    def _mounts(self, rec: Record) -> list[Mount]:
        lowers = [self.fs_dir(pid) for pid in rec.parents]
        if rec.kind == Kind.VIEW:
            if not lowers:
                return [Mount("bind", self.fs_dir(rec.id), options=["ro", "rbind"])]
            if len(lowers) == 1:
                return [Mount("bind", lowers[0], options=["ro", "rbind"])]
            return [Mount("overlay", "overlay", options=["ro", f"lowerdir={':'.join(lowers)}"])]
        if not lowers:
            return [Mount("bind", self.fs_dir(rec.id), options=["rw", "rbind"])]
        work = os.path.join(self._dir(rec.id), "work")
        options = [f"workdir={work}", f"upperdir={self.fs_dir(rec.id)}", f"lowerdir={':'.join(lowers)}"]
        return [Mount("overlay", "overlay", options=options)]

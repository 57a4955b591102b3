"""Apply an image layer (a tar stream, plain, gzip or zstd) onto a directory, safely.

Containment rules (every layer is untrusted):

* Names are relative to the target: a leading ``/`` is dropped (Docker's choice), and a name or hardlink target
  with a ``..`` component is refused.
* Nothing is ever written, linked or removed through a symlink. Parents are opened one component at a time
  with ``O_NOFOLLOW`` below a descriptor of the target, and every change is an ``*at`` call on the parent's
  descriptor that does not follow its last component. A parent that is a symlink (even one pointing inside the
  target) or not a directory is refused. Symlinks themselves may point anywhere: they are stored, never used.
* Hardlinks must name an existing non-directory inside the target (or, for an overlay upper dir, in a lower).
* Device nodes are refused unless ``allow_devices``; xattrs in the ``trusted.overlay.``/``user.overlay.``
  namespaces are refused (they would forge overlayfs whiteouts or redirects).

Two modes: ``overlay=False`` for a plain directory holding the merged lower content (the copying snapshotter),
where whiteouts delete files; ``overlay=True`` for an overlayfs upper dir, where they become 0/0 character
devices and opaque xattrs. Per the spec a whiteout only hides lower content: what this same layer wrote stays.
"""

from __future__ import annotations

import os
from collections import namedtuple

from kobako.archive import tarformat as tf
from kobako.archive.applier import Applier
from kobako.archive.compression import DecompressedChunks
from kobako.archive.lowers import Lowers
from kobako.archive.whiteout import overlay_xattr
from kobako.errors import InvalidArgument
from kobako.oci.digest import Digest

TYPE_CHECKING = False  # typing and dataclasses cost start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import IO

#: ``diff_id`` (digest of the uncompressed tar), ``size`` (its bytes), ``entries``, ``compression``.
ApplyResult = namedtuple("ApplyResult", "diff_id size entries compression")


def apply_layer(
    stream: IO[bytes],
    target: str | os.PathLike[str],
    *,
    overlay: bool = False,
    lowers: Sequence[str | bytes] | None = None,
    allow_devices: bool = False,
    same_owner: bool | None = None,
    userxattr: bool = False,
    expected_diff_id: Digest | str | None = None,
) -> ApplyResult:
    """Extract the layer in ``stream`` onto ``target`` (see the module docstring for the rules).

    ``lowers`` (overlay mode, topmost first) lets whiteouts skip names no lower has, copies attributes of
    lower directories that must be created in the upper dir, and copies up hardlink targets. ``same_owner``
    defaults to "running as root". A layer whose uncompressed digest is not ``expected_diff_id`` raises
    InvalidArgument after the fact: the caller discards the target.
    """
    root_fd = os.open(os.fspath(target), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    applier = Applier(root_fd, overlay, Lowers(lowers or [], userxattr=userxattr) if lowers else None)
    applier.allow_devices = allow_devices
    applier.same_owner = os.geteuid() == 0 if same_owner is None else same_owner
    applier.opaque_xattr = overlay_xattr("opaque", userxattr=userxattr)
    try:
        with DecompressedChunks(stream) as chunks:
            count = applier.run(tf.TarReader(chunks))
            chunks.drain()
            result = ApplyResult(chunks.diff_id, chunks.size, count, chunks.compression)
    finally:
        applier.close()
    if expected_diff_id is not None and Digest.parse(expected_diff_id) != result.diff_id:
        raise InvalidArgument(f"layer diff ID mismatch: got {result.diff_id}, expected {expected_diff_id}")
    return result

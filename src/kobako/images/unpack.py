"""Unpack image layers into committed snapshots keyed by chain ID, without mounting anything.

Each missing layer gets an active snapshot on top of its parent's chain ID; the layer is applied straight into
that snapshot's directory (the overlay upper dir, with the parents as lowers, or the native snapshotter's full
copy), its diff ID checked against the image config, and the snapshot committed under the layer's chain ID.
Existing chain IDs are skipped, so images that share a base share its snapshots.

Active unpack snapshots carry the label ``kobako.unpack=<pid>:<start time>``: one whose process died (a
killed ``kobako load``) is removed by GC and ``system check``.
"""

from __future__ import annotations

import os
import time

from kobako.errors import AlreadyExists, InvalidArgument, NotFound
from kobako.images.snapshotters import (  # noqa: F401  # their first home: callers import them from here
    SNAPSHOTTERS,
    _detect,
    _fs_type,
    open_snapshotter,
    snapshotter_kind,
)
from kobako.metadata.lock import UNPACK_LABEL, owner_token
from kobako.oci.image_spec import chain_ids

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from typing import IO

    from kobako.archive.tar import ApplyResult
    from kobako.snapshots.base import Snapshotter

DIFF_ID_LABEL = "kobako.diff-id"


def _is_overlay(sn: Snapshotter) -> bool:
    from kobako.snapshots.overlay import OverlaySnapshotter

    return isinstance(sn, OverlaySnapshotter)


def apply_into_new(
    sn: Snapshotter, parent: str, stream: IO[bytes], expected_diff_id: str | None = None
) -> tuple[str, ApplyResult]:
    """Apply the layer in ``stream`` on a new active snapshot over ``parent``; return (its key, result).

    On failure the active snapshot is removed and the error raised; the caller commits or removes it.
    """
    from kobako.archive.tar import apply_layer

    key = f"unpack-{os.getpid()}-{time.monotonic_ns()}"
    mounts = sn.prepare(key, parent, {UNPACK_LABEL: owner_token()})
    try:
        m = mounts[0]
        if m.type == "overlay":
            upper, lowers = m.option("upperdir"), (m.option("lowerdir") or "").split(":")
        else:
            upper, lowers = m.source, None
        assert upper is not None
        result = apply_layer(
            stream, upper, overlay=_is_overlay(sn), lowers=lowers, expected_diff_id=expected_diff_id
        )
    except BaseException as exc:
        try:
            sn.remove(key)
        except Exception as cleanup:
            if hasattr(exc, "add_cleanup_error"):
                exc.add_cleanup_error(cleanup)
        raise
    return key, result


def commit_layer(sn: Snapshotter, key: str, chain_id: str, diff_id: str) -> None:
    """Commit an unpacked active snapshot as ``chain_id``; if a concurrent unpack won, drop ours."""
    try:
        sn.commit(chain_id, key, {DIFF_ID_LABEL: str(diff_id)})
    except AlreadyExists:
        sn.remove(key)


def exists(sn: Snapshotter, key: str) -> bool:
    try:
        sn.stat(key)
    except NotFound:
        return False
    return True


def unpack(sn: Snapshotter, content_root: str, layers: list[dict], diff_ids: list[str]) -> str:
    """Make sure every layer's chain ID is a committed snapshot; return the top chain ID ("" if none).

    The caller holds the GC lock shared (see :mod:`kobako.metadata.lock`).
    """
    if len(layers) != len(diff_ids):
        raise InvalidArgument(f"image has {len(layers)} layers but its config lists {len(diff_ids)} diff IDs")
    chain = chain_ids(diff_ids)
    start = len(chain)
    while start > 0 and not exists(sn, chain[start - 1]):  # the longest unpacked prefix
        start -= 1
    for i in range(start, len(chain)):
        layer = layers[i]
        alg, _, hexpart = str(layer["digest"]).partition(":")
        path = os.path.join(content_root, "blobs", alg, hexpart)
        try:
            blob = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise NotFound(f"layer {layer['digest']} is missing from the content store") from None
        with blob:
            parent = chain[i - 1] if i else ""
            key, _ = apply_into_new(sn, parent, blob, expected_diff_id=diff_ids[i])
        commit_layer(sn, key, chain[i], diff_ids[i])
    return chain[-1] if chain else ""

"""Snapshots for build steps: a writable workspace over a state's layers, read-only views, new layers.

A step that changes files (RUN, COPY, ADD, WORKDIR) gets a :class:`Workspace`: an active snapshot prepared
on the state's top chain ID (unpacked from the content store first if GC removed it), mounted under
``<state root>/build/mnt/``. After the step it is unmounted and its changes become a layer: for overlay the
upper dir is diffed (whiteouts, opaque dirs), for the copying snapshotter the tree is compared with a view
of the parent. The layer blob (gzip) goes to the content store and the snapshot is committed under the new
chain ID, exactly as an unpacked image layer would be; an empty diff makes no layer.

Workspaces carry the ``kobako.unpack`` owner label, so a build killed mid-step leaves a snapshot GC and
``system check`` remove; mount points are named after their owner and swept by :func:`sweep_stale`.
"""

from __future__ import annotations

import os
import time

from kobako.errors import AlreadyExists, KobakoError
from kobako.metadata.lock import UNPACK_LABEL, owner_alive, owner_token
from kobako.mount import mount_all, mounted_under, unmount_all
from kobako.oci import image_spec as spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from kobako.archive.diff import LayerDigests
    from kobako.build.state import StageState
    from kobako.content.ingest import LocalWriter
    from kobako.images.service import ImageService
    from kobako.mount import Mount

EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
_seq = 0


def unique_name(prefix: str) -> str:
    """``PREFIX-PID.START-N-NS``: unique, and naming its owner for :func:`sweep_stale`."""
    global _seq
    _seq += 1
    token = owner_token().replace(":", ".")
    return f"{prefix}-{token}-{_seq}-{time.monotonic_ns() % 10**6}"


def mount_base(state_root: str) -> str:
    return os.path.join(state_root, "build", "mnt")


def sweep_stale(state_root: str) -> list[str]:
    """Unmount and remove mount points (and bundles) of builds whose process is gone."""
    removed = []
    for sub in ("mnt", "run"):
        base = os.path.join(state_root, "build", sub)
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            continue
        for name in names:
            parts = name.split("-", 2)
            if len(parts) < 3 or owner_alive(parts[1].replace(".", ":", 1)):
                continue
            path = os.path.join(base, name)
            try:
                if mounted_under(path):
                    unmount_all(path, detach=True)
                import shutil

                shutil.rmtree(path)
                removed.append(path)
            except (OSError, KobakoError):
                continue
    return removed


class Layers:
    """The snapshot and content side of one build."""

    def __init__(self, service: ImageService) -> None:
        self.svc = service
        self.sn = service.snapshotter()
        self.content = service.content
        self.mnt = mount_base(service.root)

    @property
    def overlay(self) -> bool:
        from kobako.snapshots.overlay import OverlaySnapshotter

        return isinstance(self.sn, OverlaySnapshotter)

    def valid(self, layers: list[dict]) -> bool:
        """Whether every layer blob of a cached state is still in the content store."""
        return all(self.svc.has_blob(layer["digest"]) for layer in layers)

    def ensure_fs(self, state: StageState) -> None:
        """Make sure the state's layers are committed snapshots (GC may have removed them)."""
        if not state.layers:
            return
        from kobako.images.unpack import exists, unpack

        if exists(self.sn, state.top):
            return
        unpack(self.sn, self.content.root, state.layers, state.diff_ids)

    def workspace(self, state: StageState) -> Workspace:
        self.ensure_fs(state)
        return Workspace(self, state)

    def view(self, state: StageState) -> View:
        self.ensure_fs(state)
        return View(self, state.top)

    def store_layer(
        self, write: Callable[[LocalWriter], LayerDigests], ref_hint: str
    ) -> tuple[dict, str] | None:
        """Run ``write(sink) -> LayerDigests`` into a new blob; (descriptor, diff_id), None if empty."""
        ref = unique_name(f"build-{ref_hint}")
        writer = self.content.writer(ref)
        try:
            digests = write(writer)
            diff_id = str(digests.diff_id)
            if diff_id == EMPTY_TAR_DIFF_ID:
                return None
            try:
                blob = str(writer.commit(digests.size, digests.digest))
            except AlreadyExists:
                blob = str(digests.digest)
            writer = None
            media_type = spec.LAYER_MEDIA_TYPE[digests.compression]
            return spec.descriptor(media_type, blob, digests.size), diff_id
        finally:
            if writer is not None:
                writer.close()
                try:
                    self.content.abort(ref)
                except KobakoError:
                    pass


class View:
    """A read-only mount of a committed chain (or an empty directory for no layers)."""

    def __init__(self, layers: Layers, top: str) -> None:
        self.layers = layers
        self.key = unique_name("view")
        self.path = os.path.join(layers.mnt, self.key)
        os.makedirs(self.path, 0o700)
        self.mounted = False
        try:
            mounts = layers.sn.view(self.key, top, {UNPACK_LABEL: owner_token()})
            mount_all(mounts, self.path)
            self.mounted = True
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        err: BaseException | None = None
        try:
            if self.mounted:
                unmount_all(self.path)
                self.mounted = False
        except KobakoError as exc:
            err = exc
        try:
            self.layers.sn.remove(self.key)
        except KobakoError:
            pass
        try:
            os.rmdir(self.path)
        except OSError:
            pass
        if err is not None:
            raise err


class Workspace:
    """An active snapshot over ``state`` mounted at ``path`` while open; see the module docstring."""

    def __init__(self, layers: Layers, state: StageState) -> None:
        self.layers = layers
        self.parent = state.top
        self.key = unique_name("build")
        self.path = os.path.join(layers.mnt, self.key)
        self.mounts: list[Mount] = []
        self.mounted = False
        self.alive = False

    def open(self) -> str:
        os.makedirs(self.path, 0o700)
        self.mounts = self.layers.sn.prepare(self.key, self.parent, {UNPACK_LABEL: owner_token()})
        self.alive = True
        mount_all(self.mounts, self.path)
        self.mounted = True
        return self.path

    def unmount(self) -> None:
        if self.mounted:
            unmount_all(self.path)
            self.mounted = False

    @property
    def upper(self) -> str | None:
        m = self.mounts[0]
        return m.option("upperdir") if m.type == "overlay" else m.source

    @property
    def lowers(self) -> list[str]:
        m = self.mounts[0]
        lower = m.option("lowerdir") if m.type == "overlay" else None
        return lower.split(":") if lower else []

    def commit(self, state: StageState) -> bool:
        """Turn the changes into a layer on ``state``; False (and nothing added) when there are none."""
        from kobako.archive.diff import write_dir_diff, write_upper_diff
        from kobako.images.unpack import commit_layer

        self.unmount()
        upper = self.upper
        assert upper is not None
        if self.mounts[0].type == "overlay" or not self.parent:
            if not os.listdir(upper):
                self.discard()
                return False
            result = self.layers.store_layer(lambda sink: write_upper_diff(upper, sink), "layer")
        else:  # the copying snapshotter: compare with the parent's tree
            view = View(self.layers, self.parent)
            try:
                result = self.layers.store_layer(lambda sink: write_dir_diff(view.path, upper, sink), "layer")
            finally:
                view.close()
        if result is None:
            self.discard()
            return False
        descriptor, diff_id = result
        chain = spec.chain_ids([*state.diff_ids, diff_id])[-1]
        commit_layer(self.layers.sn, self.key, chain, diff_id)
        self.alive = False
        state.add_layer(descriptor, diff_id)
        return True

    def discard(self) -> None:
        if self.alive:
            try:
                self.layers.sn.remove(self.key)
            except KobakoError:
                pass
            self.alive = False

    def close(self) -> None:
        """Unmount, remove the snapshot if it was not committed, remove the mount point."""
        err: BaseException | None = None
        try:
            self.unmount()
        except KobakoError as exc:
            err = exc
        if err is None:
            self.discard()
        try:
            os.rmdir(self.path)
        except OSError:
            pass
        if err is not None:
            raise err

"""GC: marks from image records and active snapshots, sweeps the rest (content and committed snapshots)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from kobako.content.local import LocalStore
from kobako.images.archive import put_bytes
from kobako.images.store import ImageStore
from kobako.metadata.db import MetadataDB
from kobako.metadata.gc import collect
from kobako.metadata.lock import UNPACK_LABEL, owner_alive, owner_token
from kobako.oci import image_spec as spec
from kobako.oci import jsoncodec
from kobako.snapshots.native import NativeSnapshotter


def _layer(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = name.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class World:
    def __init__(self, root: Path) -> None:
        self.content = LocalStore(root / "content")
        self.sn = NativeSnapshotter(root / "snapshots")
        self.db = MetadataDB(str(root / "metadata.db"))
        self.store = ImageStore(self.db)

    def image(self, name: str, layers: list[bytes]) -> tuple[str, list[str]]:
        """Store an image's blobs, unpack its chain (empty snapshots suffice here), record it."""
        diff_ids = [str(put_bytes(self.content, layer, f"t-{os.urandom(4).hex()}")) for layer in layers]
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        cbytes = jsoncodec.dumps(config).encode()
        cdigest = str(put_bytes(self.content, cbytes, "t-config"))
        manifest = {"schemaVersion": 2, "mediaType": spec.OCI_MANIFEST,
                    "config": spec.descriptor(spec.OCI_CONFIG, cdigest, len(cbytes)),
                    "layers": [spec.descriptor(spec.OCI_LAYER, d, len(b)) for d, b in zip(diff_ids, layers, strict=True)]}  # fmt: skip
        mbytes = jsoncodec.dumps(manifest).encode()
        mdigest = str(put_bytes(self.content, mbytes, "t-manifest"))
        chain = spec.chain_ids(diff_ids)
        for i, key in enumerate(chain):
            if key not in {s.key for s in self.sn.walk()}:
                self.sn.prepare("tmp", chain[i - 1] if i else "")
                self.sn.commit(key, "tmp")
        self.store.set(name, spec.descriptor(spec.OCI_MANIFEST, mdigest, len(mbytes)), cdigest)
        return cdigest, chain

    def keys(self) -> set[str]:
        return {s.key for s in self.sn.walk()}


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    yield w
    w.sn.close()
    w.db.close()


def test_gc_keeps_referenced_and_sweeps_unreferenced(world: World) -> None:
    base = _layer("base")
    id_a, chain_a = world.image("docker.io/library/a:latest", [base, _layer("a")])
    _, chain_b = world.image("docker.io/library/b:latest", [base, _layer("b")])
    assert chain_a[0] == chain_b[0]
    blobs_before = {str(i.digest) for i in world.content.list()}
    result = collect(world.content, world.sn, world.db)
    assert (result.blobs, result.snapshots, result.errors) == ([], [], [])
    assert {str(i.digest) for i in world.content.list()} == blobs_before

    world.store.remove_image(id_a)
    result = collect(world.content, world.sn, world.db)
    assert sorted(result.snapshots) == sorted([chain_a[1]])  # the shared base stays
    assert len(result.blobs) == 3 and result.bytes > 0  # manifest, config, layer "a"
    assert world.keys() == set(chain_b)


def test_active_snapshot_is_a_root(world: World) -> None:
    image_id, chain = world.image("docker.io/library/a:latest", [_layer("x"), _layer("y")])
    world.sn.prepare("container-1", chain[-1], {"kobako.container": "c1"})
    world.store.remove_image(image_id)
    result = collect(world.content, world.sn, world.db)
    assert result.snapshots == []
    assert world.keys() == {*chain, "container-1"}
    world.sn.remove("container-1")
    result = collect(world.content, world.sn, world.db)
    assert result.snapshots == [chain[1], chain[0]]  # children first
    assert world.keys() == set()


def test_dead_unpack_snapshot_is_removed(world: World) -> None:
    world.sn.prepare("unpack-dead", "", {UNPACK_LABEL: "999999999:1"})
    world.sn.prepare("unpack-live", "", {UNPACK_LABEL: owner_token()})
    result = collect(world.content, world.sn, world.db)
    assert result.unpacks == ["unpack-dead"]
    assert world.keys() == {"unpack-live"}
    assert owner_alive(owner_token()) and not owner_alive("1:0") and not owner_alive("x")


def test_unreadable_manifest_stops_the_sweep(world: World) -> None:
    world.image("docker.io/library/a:latest", [_layer("x")])
    rec = world.store.list()[0]
    path = world.content.blob_path(rec.digest)
    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(b"{not json")
    world.store.set(
        "docker.io/library/orphan:1", dict(spec.descriptor(spec.OCI_MANIFEST, rec.digest, 1)), rec.image_id
    )
    result = collect(world.content, world.sn, world.db)
    assert result.errors and result.blobs == [] and result.snapshots == []

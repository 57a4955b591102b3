"""ImageService: resolve by name/ID/digest, image_in_use, rmi semantics, save → load round trips, history."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from _image_archives import config_for, docker_archive, layer, sha

from kobako.errors import Conflict, InvalidArgument, NotFound
from kobako.images.inspect import history, inspect, parse_time
from kobako.images.loader import load
from kobako.images.remove import prune_images, remove
from kobako.images.saver import save
from kobako.images.service import ImageService

L1 = layer({"bin/a": b"a"})
L2 = layer({"bin/b": b"b"})


def _load(svc: ImageService, layers: list[bytes], tags: list[str] | None, **config: object) -> str:
    return load(svc, io.BytesIO(docker_archive(layers, tags, config_for(layers, **config))))[0].image_id


def test_resolve_forms(svc: ImageService) -> None:
    image_id = _load(svc, [L1], ["busybox:1", "localhost:5000/bb"])
    image = svc.resolve("busybox:1")
    assert image.id == image_id
    assert image.names == ["docker.io/library/busybox:1", "localhost:5000/bb:latest"]
    hexid = image_id[7:]
    for ref in (image_id, hexid, hexid[:12], "sha256:" + hexid[:5], "docker.io/library/busybox:1",
                "localhost:5000/bb", f"busybox@{image.manifest_digest}",
                f"busybox:1@{image.manifest_digest}"):  # fmt: skip
        assert svc.resolve(ref).id == image_id, ref
    assert image.top_snapshot == sha(L1)
    for ref in ("busybox", "busybox:2", "0" * 12, "nosuch", f"other@{image.manifest_digest}"):
        with pytest.raises(NotFound, match=f"no such image: {ref}"):
            svc.resolve(ref)
    with pytest.raises(InvalidArgument):
        svc.resolve("UPPER")


def test_short_id_ambiguity(svc: ImageService) -> None:
    ids = [_load(svc, [layer({"f": os.urandom(8)})], [f"img{i}"]) for i in range(40)]
    first = {}
    for i in ids:
        first.setdefault(i[7], []).append(i)
    shared = next(v for v in first.values() if len(v) > 1)
    with pytest.raises(InvalidArgument, match="ambiguous"):
        svc.resolve(shared[0][7])


def _record(svc: ImageService, cid: str, image_id: str) -> None:
    d = Path(svc.root) / "containers" / cid
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"id": cid, "image_id": image_id}))


def test_rmi_semantics(svc: ImageService) -> None:
    image_id = _load(svc, [L1], ["a:1", "b:1"])
    assert remove(svc, "a:1", False) == (["Untagged: a:1"], False)
    _record(svc, "c" * 64, image_id)
    assert svc.image_in_use(svc.resolve("b:1")) == ["c" * 64]
    with pytest.raises(Conflict, match="must force"):
        remove(svc, "b:1", False)
    assert remove(svc, "b:1", True) == (["Untagged: b:1"], False)
    assert svc.resolve(image_id).names == []  # kept dangling while the container needs it
    assert prune_images(svc, False) == ([], 0)  # in use: prune keeps it
    (Path(svc.root) / "containers" / ("c" * 64) / "config.json").unlink()
    lines, freed = prune_images(svc, False)
    assert lines == [f"deleted: {image_id}"] and freed > 0
    assert list(svc.content.list()) == []
    assert list(svc.snapshotter().walk()) == []


def test_rmi_by_id_with_several_names(svc: ImageService) -> None:
    image_id = _load(svc, [L1], ["a:1", "b:1"])
    with pytest.raises(Conflict, match="multiple repositories"):
        remove(svc, image_id[7:19], False)
    lines, deleted = remove(svc, image_id[7:19], True)
    assert lines == ["Untagged: a:1", "Untagged: b:1", f"Deleted: {image_id}"] and deleted


def _members(data: bytes) -> list[tuple[str, int, int, int, int]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, m.mode, m.uid, m.gid, m.mtime) for m in tar.getmembers()]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_round_trip_is_deterministic(svc: ImageService, tmp_path: Path, fmt: str) -> None:
    image_id = _load(svc, [L1, L2], ["app:v1"])
    image = svc.resolve("app:v1")
    out1, out2 = io.BytesIO(), io.BytesIO()
    save(svc, [(image, image.names)], out1, fmt)
    save(svc, [(image, image.names)], out2, fmt)
    assert out1.getvalue() == out2.getvalue()
    assert all(m[2:] == (0, 0, 0) for m in _members(out1.getvalue()))
    other = ImageService(str(tmp_path / "other"))
    try:
        loaded = load(other, io.BytesIO(out1.getvalue()))
        assert loaded[0].image_id == image_id and loaded[0].names == ["docker.io/library/app:v1"]
        again = other.resolve("app:v1")
        assert again.config == image.config and again.top_snapshot == image.top_snapshot
    finally:
        other.close()


def test_save_decompresses_gzip_layers_for_docker_archive(svc: ImageService, tmp_path: Path) -> None:
    import gzip

    from _image_archives import make_tar

    config = config_for([L1])
    gz = gzip.compress(L1, mtime=0)
    manifest = [{"Config": "c.json", "RepoTags": ["gz:1"], "Layers": ["l.tar.gz"]}]
    load(svc, io.BytesIO(make_tar([("c.json", config), ("l.tar.gz", gz),
                                   ("manifest.json", json.dumps(manifest).encode())])))  # fmt: skip
    image = svc.resolve("gz:1")
    assert image.layers[0]["mediaType"].endswith("+gzip")
    out = io.BytesIO()
    save(svc, [(image, image.names)], out, "docker-archive")
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.extractfile(sha(L1)[7:] + ".tar").read() == L1


def test_inspect_and_history(svc: ImageService) -> None:
    hist = [{"created": "2024-01-02T03:04:05.5Z", "created_by": "ADD a", "comment": "c1"},
            {"created": "2024-01-02T03:04:06Z", "created_by": "ENV x", "empty_layer": True},
            {"created": "2024-01-02T03:04:07+01:00", "created_by": "ADD b"}]  # fmt: skip
    image_id = _load(svc, [L1, L2], ["h:1"], history=hist, created="2024-01-02T03:04:07Z")
    image = svc.resolve("h:1")
    doc = inspect(image, "native")
    assert doc["Id"] == image_id and doc["RepoTags"] == ["h:1"]
    assert doc["RepoDigests"] == [f"h@{image.manifest_digest}"]
    assert doc["RootFS"]["Layers"] == [sha(L1), sha(L2)] and doc["Config"] == {"Cmd": ["sh"]}
    rows = history(image)
    assert [r["id"] for r in rows] == [image_id, "<missing>", "<missing>"]
    assert [r["size"] for r in rows] == [len(L2), 0, len(L1)]
    assert rows[2]["created"] == parse_time("2024-01-02T03:04:05.5Z")
    assert parse_time("2024-01-02T03:04:07+01:00") == parse_time("2024-01-02T02:04:07Z")
    assert parse_time("yesterday") is None


def test_prepare_rootfs_unpacks_on_demand(svc: ImageService) -> None:
    _load(svc, [L1, L2], ["p:1"])
    image = svc.resolve("p:1")
    sn = svc.snapshotter()
    for key in reversed(image.chain):  # as if GC or a crash removed them
        sn.remove(key)
    mounts = svc.prepare_rootfs(image, "ctr-1", {"kobako.container": "ctr-1"})
    root = mounts[0].source
    assert Path(root, "bin/a").read_bytes() == b"a"
    assert Path(root, "bin/b").read_bytes() == b"b"
    assert svc.rootfs_mounts("ctr-1") == mounts
    svc.remove_rootfs("ctr-1")
    svc.remove_rootfs("ctr-1")  # missing is fine
    assert {i.key for i in sn.walk()} == set(image.chain)


def test_index_target_resolves_to_the_host_manifest(svc: ImageService) -> None:
    from kobako.images.archive import put_bytes
    from kobako.oci import image_spec as spec

    image_id = _load(svc, [L1], ["single:1"])
    image = svc.resolve("single:1")
    mdesc = {**image.target, "platform": {"os": "linux", "architecture": "amd64"}}
    other = {
        **image.target,
        "digest": "sha256:" + "e" * 64,
        "platform": {"os": "linux", "architecture": "arm64"},
    }
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": spec.OCI_INDEX, "manifests": [other, mdesc]}
    ).encode()
    digest = str(put_bytes(svc.content, index, "t-index"))
    svc.store.set("docker.io/library/multi:1", spec.descriptor(spec.OCI_INDEX, digest, len(index)), image_id)
    svc.store.untag("docker.io/library/single:1")
    multi = svc.resolve("multi:1")
    assert multi.id == image_id and multi.manifest_digest == image.target["digest"]
    assert multi.target["mediaType"] == spec.OCI_INDEX
    assert svc.gc().blobs == []  # the index, its present manifest, config and layer are all reachable

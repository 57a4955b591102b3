"""Hostile archives for ``kobako load``: refused with a clear message, nothing committed, no ingest left."""

from __future__ import annotations

import gzip
import io
import os

import pytest
from _image_archives import config_for, docker_archive, layer, make_tar, oci_archive, sha

from kobako.errors import InvalidArgument
from kobako.images.archive import Staging, _resolve_symlink
from kobako.images.loader import load
from kobako.images.service import ImageService


def _nothing_left(svc: ImageService) -> None:
    assert list(svc.content.list()) == []
    assert svc.content.statuses() == []
    assert svc.store.list() == []
    assert os.listdir(os.path.join(svc.content_root, "ingest")) == []


def _load(svc: ImageService, data: bytes) -> list:
    return load(svc, io.BytesIO(data))


L1 = layer({"bin/hello": b"hello\n"})
L2 = layer({"etc/motd": b"hi\n"})


def test_docker_archive_loads(svc: ImageService) -> None:
    loaded = _load(svc, docker_archive([L1, L2], ["busybox:latest", "x/y:1"]))
    assert loaded[0].names == ["docker.io/library/busybox:latest", "docker.io/x/y:1"]
    image = svc.resolve("busybox")
    assert image.id == sha(config_for([L1, L2]))
    assert [layer["digest"] for layer in image.layers] == [sha(L1), sha(L2)]
    assert svc.content.statuses() == []


def test_oci_archive_loads_gzip_and_untagged(svc: ImageService) -> None:
    data = gzip.compress(oci_archive([L1], "localhost:5000/app:v1"))
    assert _load(svc, data)[0].names == ["localhost:5000/app:v1"]
    loaded = _load(svc, oci_archive([L2], "latest"))  # a bare tag names no repository
    assert loaded[0].names == []
    assert svc.resolve(loaded[0].image_id).names == []


HOSTILE = [
    (make_tar([("../evil", b"x")]), "'..' is not allowed"),
    (make_tar([("/abs", b"x")]), "absolute names"),
    (make_tar([("a", "->", "../../etc/passwd")]), "points outside the archive"),
    (make_tar([("a", "->", "/etc/passwd")]), "absolute targets"),
    (make_tar([("dev", "chr")]), "unexpected type"),
    (make_tar([("manifest.json", b"[]"), ("manifest.json", b"[]")]), "appears twice"),
    (make_tar([("x", b"y")]), "neither manifest.json nor index.json"),
    (b"garbage" * 100, "not an image archive"),
    (gzip.compress(b"x" * 1000)[:-8], "not an image archive"),
    (make_tar([("manifest.json", b"{")]), "manifest.json"),
    (make_tar([("manifest.json", b'[{"Config": "c.json", "Layers": []}]')]), "no file 'c.json'"),
]


@pytest.mark.parametrize(("data", "message"), HOSTILE)
def test_hostile_archive(svc: ImageService, data: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        _load(svc, data)
    assert message in str(info.value)
    _nothing_left(svc)


def test_wrong_diff_id_is_refused(svc: ImageService) -> None:
    with pytest.raises(InvalidArgument, match="but the config says"):
        _load(svc, docker_archive([L1], ["a"], config=config_for([L2])))
    _nothing_left(svc)


def test_layer_count_mismatch(svc: ImageService) -> None:
    with pytest.raises(InvalidArgument, match="diff IDs"):
        _load(svc, docker_archive([L1], ["a"], config=config_for([L1, L2])))
    _nothing_left(svc)


def test_oci_blob_digest_mismatch(svc: ImageService) -> None:
    data = make_tar([("blobs/sha256/" + "0" * 64, b"not what the name says")])
    with pytest.raises(InvalidArgument, match="content hashes to"):
        _load(svc, data)
    _nothing_left(svc)


def test_oci_descriptor_size_mismatch(svc: ImageService) -> None:
    bad = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(L1), "size": len(L1) + 1}]
    with pytest.raises(InvalidArgument, match="the descriptor says"):
        _load(svc, oci_archive([L1], "a:b", tamper={"layers": bad}))
    _nothing_left(svc)


def test_oci_missing_blob(svc: ImageService) -> None:
    other = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(L2), "size": len(L2)}]
    with pytest.raises(InvalidArgument, match="has no blob"):
        _load(svc, oci_archive([L1], "a:b", config=config_for([L2]), tamper={"layers": other}))
    _nothing_left(svc)


def test_hostile_manifest_json_in_oci(svc: ImageService) -> None:
    with pytest.raises(InvalidArgument, match=r"manifest\.schemaVersion"):
        _load(svc, oci_archive([L1], "a:b", tamper={"schemaVersion": "2"}))
    _nothing_left(svc)


def test_hostile_layer_content_is_refused_after_commit(svc: ImageService) -> None:
    evil = make_tar([("../../escape", b"x")])
    with pytest.raises(InvalidArgument, match="not allowed"):
        _load(svc, docker_archive([evil], ["a"]))
    assert svc.store.list() == []  # blobs may remain (whole, unreferenced): GC removes them
    assert svc.gc().errors == []
    _nothing_left(svc)


def test_symlink_aliases(svc: ImageService) -> None:
    staging = Staging(svc.content)
    staging.read(io.BytesIO(make_tar([("d/real.tar", b"abc"), ("x/layer.tar", "->", "../d/real.tar"),
                                      ("hard", "=>", "d/real.tar")])))  # fmt: skip
    assert staging.document("x/layer.tar") == b"abc"
    assert staging.document("hard") == b"abc"
    assert _resolve_symlink("a/b/c", b"../../x") == "x"
    staging.discard()


def test_link_loops_are_refused(svc: ImageService) -> None:
    staging = Staging(svc.content)
    staging.read(io.BytesIO(make_tar([("a", "->", "b"), ("b", "->", "a")])))
    with pytest.raises(InvalidArgument, match="too many levels"):
        staging.lookup("a")


def test_big_files_go_to_ingests_and_are_discarded(
    svc: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kobako.images.archive as archive

    monkeypatch.setattr(archive, "SMALL_FILE", 10)
    big = layer({"f": os.urandom(5000)})
    loaded = _load(svc, docker_archive([big, L1], ["big"]))
    assert svc.resolve("big").id == loaded[0].image_id
    assert svc.content.statuses() == []
    staging = Staging(svc.content)
    staging.read(io.BytesIO(make_tar([("blob.bin", os.urandom(100))])))
    assert len(svc.content.statuses()) == 1
    staging.discard()
    assert svc.content.statuses() == []

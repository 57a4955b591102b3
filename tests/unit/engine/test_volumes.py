"""VolumeStore operations, in-use refusal, and the OCI mounts volume_mounts makes (with image copy-up)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kobako.engine.runopts import parse_run_args
from kobako.engine.volumes import VolumeStore, scan_containers, volume_mounts
from kobako.errors import Conflict, InvalidArgument, NotFound

CID = "c" * 64


@pytest.fixture
def used() -> dict[str, list[str]]:
    return {}


@pytest.fixture
def store(tmp_path: Path, used: dict[str, list[str]]) -> VolumeStore:
    return VolumeStore(str(tmp_path / "volumes"), users=lambda: used)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "srv/app/sub").mkdir(parents=True)
    (root / "srv/app/config.txt").write_text("from the image\n")
    (root / "srv/app/sub/deep.txt").write_text("deep\n")
    os.chmod(root / "srv/app/config.txt", 0o640)
    os.chmod(root / "srv/app", 0o750)
    (root / "srv/app/link").symlink_to("/etc/passwd")  # a link into the *container's* /etc: copied as a link
    os.link(root / "srv/app/config.txt", root / "srv/app/hardlink.txt")
    os.mkfifo(root / "srv/app/fifo")
    return root


def mounts_for(store: VolumeStore, rootfs: Path, *argv: str, image: dict | None = None) -> list[dict]:
    opts, _i, _c = parse_run_args([*argv, "img"])
    return volume_mounts(opts, image or {"config": {}}, str(rootfs), store, CID)


def test_create_get_list_inspect(store: VolumeStore) -> None:
    vol = store.create("data", labels={"team": "a"})
    assert vol.name == "data" and vol.mountpoint == os.path.join(store.root, "data", "_data")
    assert os.path.isdir(vol.mountpoint) and stat.S_IMODE(os.stat(vol.mountpoint).st_mode) == 0o755
    info = store.inspect("data")
    assert set(info) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert (info["Name"], info["Driver"], info["Scope"], info["Labels"]) == (
        "data",
        "local",
        "local",
        {"team": "a"},
    )
    assert info["CreatedAt"].endswith("Z") and info["Options"] == {}
    anon = store.create()
    assert len(anon.name) == 64 and all(c in "0123456789abcdef" for c in anon.name)
    assert [v.name for v in store.list()] == sorted(["data", anon.name])
    assert store.create("data").created_at == vol.created_at  # an existing name is returned, as docker does
    assert not [n for n in os.listdir(store.root) if n.startswith(".tmp")]


@pytest.mark.parametrize("name", ["a", "-x", "a/b", "..", "a b", "é1"])
def test_bad_names(store: VolumeStore, name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid characters for a local volume name"):
        store.create(name)


def test_unsupported_driver_and_options(store: VolumeStore) -> None:
    with pytest.raises(InvalidArgument, match="driver 'nfs' is not supported"):
        store.create("x1", driver="nfs")
    with pytest.raises(InvalidArgument, match="options are not supported"):
        store.create("x1", opts={"type": "tmpfs"})
    assert store.list() == []


def test_missing(store: VolumeStore) -> None:
    with pytest.raises(NotFound, match="no such volume: nope"):
        store.get("nope")
    with pytest.raises(NotFound):
        store.remove("nope")
    store.remove("nope", force=True)
    assert store.list() == []


def test_remove_refuses_a_volume_in_use_even_with_force(
    store: VolumeStore, used: dict[str, list[str]]
) -> None:
    store.create("busy")
    used["busy"] = ["abc123"]
    for force in (False, True):
        with pytest.raises(Conflict, match=r"volume is in use - \[abc123\]"):
            store.remove("busy", force=force)
    assert store.in_use("busy") == ["abc123"]
    used.clear()
    store.remove("busy")
    assert not store.exists("busy") and os.listdir(store.root) == []


def test_prune_removes_only_unused(store: VolumeStore, used: dict[str, list[str]]) -> None:
    for name in ("keep", "drop1", "drop2"):
        store.create(name)
    used["keep"] = ["c1"]
    assert sorted(store.prune()) == ["drop1", "drop2"]
    assert [v.name for v in store.list()] == ["keep"]


def test_default_usage_scans_container_records(tmp_path: Path) -> None:
    store = VolumeStore(str(tmp_path / "volumes"))  # containers/ is its sibling, as under the state root
    vol = store.create("shared")
    store.create("byname")
    store.create("bylist")
    records = {
        "c1": {"id": "c1", "mounts": [{"Type": "bind", "Source": vol.mountpoint, "Destination": "/d"}]},
        "c2": {"id": "c2", "mounts": [{"Name": "byname", "Source": "/elsewhere"}]},
        "c3": {"id": "c3", "volumes": ["bylist", "shared"]},
    }
    for cid, record in records.items():
        (tmp_path / "containers" / cid).mkdir(parents=True)
        (tmp_path / "containers" / cid / "config.json").write_text(json.dumps(record))
    (tmp_path / "containers/broken").mkdir()
    (tmp_path / "containers/broken/config.json").write_text("{half")
    usage = scan_containers(str(tmp_path / "containers"), store.root)
    assert {k: sorted(v) for k, v in usage.items()} == {
        "shared": ["c1", "c3"],
        "byname": ["c2"],
        "bylist": ["c3"],
    }
    with pytest.raises(Conflict):
        store.remove("byname")
    store.create("free")
    assert store.prune() == ["free"]


def test_names_in(store: VolumeStore) -> None:
    a = store.create("aa")
    mounts = [{"source": a.mountpoint}, {"source": "/host/dir"}, {"source": store.root + "/x/y/_data"}, {}]
    assert store.names_in(mounts) == ["aa"]


def test_bind_mounts(store: VolumeStore, rootfs: Path, tmp_path: Path) -> None:
    src = tmp_path / "hostdir"
    src.mkdir()
    m = mounts_for(
        store,
        rootfs,
        "-v",
        f"{src}:/in:ro",
        "--mount",
        f"type=bind,src={src},dst=/in2,bind-propagation=rshared",
    )
    assert m == [
        {"destination": "/in", "type": "bind", "source": str(src), "options": ["rbind", "ro", "rprivate"]},
        {"destination": "/in2", "type": "bind", "source": str(src), "options": ["rbind", "rw", "rshared"]},
    ]
    missing = tmp_path / "not-yet"
    mounts_for(store, rootfs, "-v", f"{missing}:/x")  # docker's -v creates a missing source directory
    assert missing.is_dir()
    with pytest.raises(InvalidArgument, match="bind source path does not exist"):
        mounts_for(store, rootfs, "--mount", f"type=bind,src={tmp_path / 'absent'},dst=/x")
    nonrec = mounts_for(store, rootfs, "--mount", f"type=bind,src={src},dst=/x,bind-nonrecursive,readonly")
    assert nonrec[0]["options"] == ["bind", "ro", "rprivate"]


def test_named_volume_is_created_and_filled_from_the_image_once(store: VolumeStore, rootfs: Path) -> None:
    (m,) = mounts_for(store, rootfs, "-v", "appdata:/srv/app")
    vol = store.get("appdata")
    assert m == {"destination": "/srv/app", "type": "bind", "source": vol.mountpoint,
                 "options": ["rbind", "rw", "rprivate", "nosuid", "nodev"]}  # fmt: skip
    data = Path(vol.mountpoint)
    assert (data / "config.txt").read_text() == "from the image\n"
    assert (data / "sub/deep.txt").read_text() == "deep\n"
    assert stat.S_IMODE((data / "config.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE(data.stat().st_mode) == 0o750  # the volume root takes the image dir's mode
    assert os.readlink(data / "link") == "/etc/passwd"  # kept as a link, never followed
    assert (data / "hardlink.txt").stat().st_ino == (data / "config.txt").stat().st_ino
    assert stat.S_ISFIFO((data / "fifo").lstat().st_mode)
    assert (data / "config.txt").stat().st_mtime == (rootfs / "srv/app/config.txt").stat().st_mtime
    assert not store.get("appdata").needs_copy
    # Emptied later, it is not refilled (first use only), and a volume with content is never overwritten.
    for p in ("config.txt", "hardlink.txt", "link", "fifo"):
        os.unlink(data / p)
    (data / "sub/deep.txt").unlink()
    (data / "sub").rmdir()
    mounts_for(store, rootfs, "-v", "appdata:/srv/app")
    assert os.listdir(data) == []


def test_volume_with_content_or_nocopy_is_not_filled(store: VolumeStore, rootfs: Path) -> None:
    vol = store.create("full")
    Path(vol.mountpoint, "mine").write_text("mine")
    mounts_for(store, rootfs, "-v", "full:/srv/app")
    assert os.listdir(vol.mountpoint) == ["mine"]
    mounts_for(store, rootfs, "-v", "fresh:/srv/app:nocopy")
    assert os.listdir(store.get("fresh").mountpoint) == [] and store.get("fresh").needs_copy
    mounts_for(store, rootfs, "--mount", "type=volume,src=fresh2,dst=/nothing/here")
    assert os.listdir(store.get("fresh2").mountpoint) == []


@pytest.mark.root
def test_copy_keeps_owners(store: VolumeStore, rootfs: Path) -> None:
    os.chown(rootfs / "srv/app", 1000, 1000)
    os.chown(rootfs / "srv/app/config.txt", 1234, 5678)
    os.lchown(rootfs / "srv/app/link", 42, 43)
    data = Path(mounts_for(store, rootfs, "-v", "owned:/srv/app")[0]["source"])
    assert (data.stat().st_uid, data.stat().st_gid) == (1000, 1000)
    assert ((data / "config.txt").stat().st_uid, (data / "config.txt").stat().st_gid) == (1234, 5678)
    assert ((data / "link").lstat().st_uid, (data / "link").lstat().st_gid) == (42, 43)


def test_image_symlinks_cannot_redirect_the_copy(store: VolumeStore, rootfs: Path, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.mkdir()
    (secret / "key").write_text("host only")
    (rootfs / "evil").symlink_to(str(secret))  # absolute: means <rootfs>/<tmp>/host-secret in the image
    (rootfs / "evil2").symlink_to("../../../../../../../../" + str(secret).lstrip("/"))
    for target in ("/evil", "/evil2"):
        name = "v" + target.strip("/")
        mounts_for(store, rootfs, "-v", f"{name}:{target}")
        assert os.listdir(store.get(name).mountpoint) == []


def test_image_volumes_get_anonymous_volumes(store: VolumeStore, rootfs: Path) -> None:
    image = {"config": {"Volumes": {"/srv/app": {}, "/cache": {}, "/covered": {}}}}
    m = mounts_for(store, rootfs, "-v", "named:/covered", image=image)
    dests = {x["destination"]: x for x in m}
    assert set(dests) == {"/covered", "/cache", "/srv/app"}
    assert dests["/covered"]["source"] == store.get("named").mountpoint
    anon = [v for v in store.list() if v.name != "named"]
    assert len(anon) == 2 and all(v.anonymous and len(v.name) == 64 for v in anon)
    assert os.path.exists(os.path.join(dests["/srv/app"]["source"], "config.txt"))  # filled from the image


def test_tmpfs_covers_an_image_volume(store: VolumeStore, rootfs: Path, tmp_path: Path) -> None:
    before = len(store.list())
    m = mounts_for(store, rootfs, "--tmpfs", "/cache", image={"config": {"Volumes": {"/cache": {}}}})
    assert m == [] and len(store.list()) == before


def test_volumes_made_are_removed_when_a_later_mount_fails(
    store: VolumeStore, rootfs: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgument, match="bind source path does not exist"):
        mounts_for(
            store, rootfs, "-v", "newvol:/a", "-v", "/b", "--mount", f"type=bind,src={tmp_path}/absent,dst=/c"
        )
    assert store.list() == []


def test_volume_labels_from_mount(store: VolumeStore, rootfs: Path) -> None:
    mounts_for(store, rootfs, "--mount", "type=volume,src=lab,dst=/l,volume-label=a=b,readonly")
    assert store.get("lab").labels == {"a": "b"}

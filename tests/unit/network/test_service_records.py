"""NetworkService's records and its argument checks: nothing here touches the kernel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kobako.engine.network.service import NetworkService
from kobako.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound


@pytest.fixture
def svc(tmp_path: Path) -> NetworkService:
    service = NetworkService(str(tmp_path), default_subnet="10.88.0.0/16", resolv_conf="")
    yield service
    service.close()


def test_default_network_is_made_once(svc: NetworkService, tmp_path: Path) -> None:
    first = svc.ensure_default()
    assert (first.name, first.bridge, first.subnet, first.gateway, first.dns) == (
        "bridge", "kobako0", "10.88.0.0/16", "10.88.0.1", False
    )  # fmt: skip
    other = NetworkService(str(tmp_path))
    assert other.ensure_default().id == first.id
    assert svc.get("default").id == first.id


def test_create_validates_and_records(svc: NetworkService) -> None:
    net = svc.create("app", subnet="10.60.0.0/24", gateway="10.60.0.9", internal=True, labels={"a": "b"})
    assert (net.subnet, net.gateway, net.internal, net.labels, net.dns) == ("10.60.0.0/24", "10.60.0.9", True,
                                                                            {"a": "b"}, True)  # fmt: skip
    assert net.bridge == "kb-" + net.id[:12]
    assert svc.get(net.id[:10]).name == "app"
    with pytest.raises(AlreadyExists):
        svc.create("app")
    with pytest.raises(Conflict, match="overlaps"):
        svc.create("other", subnet="10.60.0.128/25")
    for name in ("none", "host", "bridge", "default"):
        with pytest.raises(Conflict, match="reserved"):
            svc.create(name)
    with pytest.raises(InvalidArgument):
        svc.create("bad name")
    with pytest.raises(InvalidArgument, match="--gateway needs --subnet"):
        svc.create("gw", gateway="10.1.1.1")
    with pytest.raises(NotFound):
        svc.get("missing")


def test_subnets_are_picked_from_the_pool_without_overlap(svc: NetworkService) -> None:
    svc.create("taken", subnet="10.89.0.0/24")
    assert svc.create("auto1").subnet == "10.89.1.0/24"
    assert svc.create("auto2").subnet == "10.89.2.0/24"


def test_inspect_is_docker_shaped(svc: NetworkService) -> None:
    net = svc.create("app", subnet="10.61.0.0/24", labels={"k": "v"})
    info = svc.inspect("app")
    assert info["Name"] == "app" and info["Id"] == net.id and info["Driver"] == "bridge"
    assert info["IPAM"]["Config"] == [{"Subnet": "10.61.0.0/24", "Gateway": "10.61.0.1"}]
    assert info["Containers"] == {} and info["Labels"] == {"k": "v"} and info["Internal"] is False
    assert [n.name for n in svc.list()] == ["app"]


def test_mtu_option_and_defaults(svc: NetworkService, tmp_path: Path, monkeypatch) -> None:
    assert svc.create("big").mtu == 65535
    assert svc.get("big").mtu == 65535 and svc.get("big").options == {}
    docker = svc.create("docker", options={"com.docker.network.driver.mtu": "1450"})
    assert (docker.mtu, svc.get("docker").options) == (1450, {"com.docker.network.driver.mtu": "1450"})
    assert svc.create("podman", options={"mtu": "68"}).mtu == 68
    assert svc.create("both", options={"mtu": "1400", "com.docker.network.driver.mtu": "1400"}).mtu == 1400
    for options, says in (({"mtu": "67"}, "from 68 to 65535"), ({"mtu": "65536"}, "from 68 to 65535"),
                          ({"mtu": ""}, "an MTU"), ({"com.docker.network.bridge.enable_icc": "false"},
                                                    "unsupported network option"),
                          ({"mtu": "1400", "com.docker.network.driver.mtu": "1500"}, "disagree")):  # fmt: skip
        with pytest.raises(InvalidArgument, match=says):
            svc.create("bad", options=options)
    assert {n.name for n in svc.list()} == {"big", "docker", "podman", "both"}  # no "bad"
    monkeypatch.setenv("KOBAKO_BRIDGE_MTU", "1500")
    other = NetworkService(str(tmp_path / "other"), default_subnet="10.88.0.0/16", resolv_conf="")
    assert other.ensure_default().mtu == 1500
    monkeypatch.setenv("KOBAKO_BRIDGE_MTU", "jumbo")
    third = NetworkService(str(tmp_path / "third"), default_subnet="10.88.0.0/16", resolv_conf="")
    with pytest.raises(InvalidArgument, match="KOBAKO_BRIDGE_MTU"):
        third.ensure_default()
    assert svc.ensure_default().mtu == 65535  # made before the variable was set


def test_version_1_database_is_migrated_keeping_its_bridges_mtu(tmp_path: Path) -> None:
    import sqlite3

    from kobako.engine.network.store import Database

    (tmp_path / "networks").mkdir()
    conn = sqlite3.connect(tmp_path / "networks" / "network.db")
    conn.executescript("""
        CREATE TABLE networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL,
            bridge TEXT NOT NULL UNIQUE, subnet TEXT NOT NULL, gateway TEXT NOT NULL, internal INTEGER NOT NULL,
            dns INTEGER NOT NULL, labels TEXT NOT NULL, created TEXT NOT NULL);
        INSERT INTO networks VALUES ('n1', 'old', 'bridge', 'kb-n1', '10.70.0.0/24', '10.70.0.1', 0, 1, '{}', 'x');
        PRAGMA user_version=1;
    """)
    conn.close()
    db = Database(str(tmp_path))
    (old,) = db.networks()
    assert (old.name, old.mtu, old.options) == ("old", 1500, {})
    db.close()
    conn = sqlite3.connect(tmp_path / "networks" / "network.db")
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    from kobako.errors import Unavailable

    with pytest.raises(Unavailable, match="newer kobako"):
        Database(str(tmp_path))


def test_setup_checks_arguments_before_doing_anything(svc: NetworkService) -> None:
    svc.create("priv", subnet="10.62.0.0/24", internal=True)
    cid = "c" * 64
    with pytest.raises(NotFound):
        svc.setup(cid, "x", ["nope"], [], None, [], [], [], [])
    with pytest.raises(InvalidArgument, match="internal"):
        svc.setup(cid, "x", ["priv"], [], None, ["80"], [], [], [])
    with pytest.raises(InvalidArgument):
        svc.setup(cid, "x", ["priv"], [], None, ["80/sctp"], [], [], [])
    with pytest.raises(InvalidArgument, match="exposed"):
        svc.setup(cid, "x", ["priv"], [], None, [], ["http"], [], [])
    assert svc.db.sandboxes() == []
    none = svc.setup(cid, "x", ["none"], [], None, [], [], ["192.0.2.1"], [])
    assert none == {"netns_path": "", "networks": {}, "ports": {}, "hosts": [], "resolv": []}
    assert svc.setup(cid, "x", ["host"], [], None, [], [], ["192.0.2.1"], [])["resolv"] == ["192.0.2.1"]
    with pytest.raises(NotFound, match="no such container"):
        svc.setup(cid, "x", ["container:ghost"], [], None, [], [], [], [])


def test_connect_needs_a_running_container(svc: NetworkService) -> None:
    svc.create("app", subnet="10.63.0.0/24")
    with pytest.raises(FailedPrecondition, match="not running"):
        svc.connect("app", "d" * 64)
    with pytest.raises(NotFound, match="not connected"):
        svc.disconnect("app", "d" * 64)
    svc.disconnect("app", "d" * 64, force=True)


def test_imports_stay_small() -> None:
    """The service module must not load pyroute2, asyncio or the json/re stack until a verb needs them."""
    code = (
        "import sys\nfrom kobako.engine.network.service import NetworkService\n"
        "slow = ('pyroute2', 'asyncio', 'json', 're', 'ipaddress', 'ctypes')\n"
        "print(','.join(m for m in slow if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_pyroute2_messages_load_without_the_package_init() -> None:
    code = (
        "import sys\nfrom kobako.engine.network.netlink import load_messages\nload_messages()\n"
        "heavy = ('pyroute2.ndb', 'pyroute2.ipdb', 'pyroute2.iproute', 'asyncio')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "from pyroute2 import IPRoute\n"  # a later user of the whole package still gets it
        "print(heavy, IPRoute.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] IPRoute"

"""IPAM on the real SQLite file: distinct addresses always, also across processes; release; crash recovery."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.engine.network.ipam import Ipam, check_subnet, host_range, overlap
from kobako.engine.network.store import Database, Network
from kobako.errors import Conflict, InvalidArgument, Unavailable


def network(
    db: Database, subnet: str = "10.50.0.0/24", gateway: str = "10.50.0.1", nid: str = "n1"
) -> Network:
    net = Network(nid, f"net-{nid}", f"kb-{nid}", subnet, gateway)
    with db.transaction() as conn:
        db.insert_network(conn, net)
    return net


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(str(tmp_path))


def test_addresses_skip_network_broadcast_and_gateway(db: Database) -> None:
    net = network(db, "10.50.0.0/30", "10.50.0.1")
    ipam = Ipam(db)
    assert ipam.allocate(net, "a") == "10.50.0.2"
    with pytest.raises(Unavailable):
        ipam.allocate(net, "b")
    assert host_range("10.50.0.0/30") == (0x0A320001, 0x0A320002)


def test_never_the_same_address_twice_and_no_immediate_reuse(db: Database) -> None:
    net = network(db)
    ipam = Ipam(db)
    got = [ipam.allocate(net, f"c{i}") for i in range(5)]
    assert got == [f"10.50.0.{i}" for i in range(2, 7)]
    ipam.release(net.id, "c1")  # 10.50.0.3 is free again, but the cursor walks on
    assert ipam.allocate(net, "c9") == "10.50.0.7"
    assert len({ip for _n, ip, _o in ipam.allocations()}) == 5


def test_cursor_wraps_around_to_released_addresses(db: Database) -> None:
    net = network(db, "10.50.0.0/29", "10.50.0.1")  # hosts .1-.6, gateway .1: five to hand out
    ipam = Ipam(db)
    for i in range(5):
        ipam.allocate(net, f"c{i}")
    ipam.release(net.id, "c2")
    assert ipam.allocate(net, "new") == "10.50.0.4"


def test_requested_addresses(db: Database) -> None:
    net = network(db)
    ipam = Ipam(db)
    assert ipam.allocate(net, "a", "10.50.0.100") == "10.50.0.100"
    with pytest.raises(Conflict, match="already in use"):
        ipam.allocate(net, "b", "10.50.0.100")
    with pytest.raises(Conflict, match="gateway"):
        ipam.allocate(net, "b", "10.50.0.1")
    with pytest.raises(InvalidArgument, match="not a host address"):
        ipam.allocate(net, "b", "10.50.0.255")
    with pytest.raises(InvalidArgument):
        ipam.allocate(net, "b", "10.50.0.x")
    with pytest.raises(Conflict, match="already holds"):
        ipam.allocate(net, "a")


def test_release_by_owner_and_per_network(db: Database) -> None:
    one, two = network(db, nid="n1"), network(db, "10.51.0.0/24", "10.51.0.1", nid="n2")
    ipam = Ipam(db)
    ipam.allocate(one, "a")
    ipam.allocate(two, "a")
    ipam.allocate(one, "b")
    assert ipam.release(one.id, "b") is True
    assert ipam.release(one.id, "b") is False
    assert ipam.release_owner("a") == 2
    assert ipam.allocations() == []


def _allocate_many(root: str, owners: list[str]) -> None:
    db = Database(root)
    net = db.network_by_id("n1")
    ipam = Ipam(db)
    for owner in owners:
        ipam.allocate(net, owner)  # type: ignore[arg-type]


def test_concurrent_processes_get_distinct_addresses(tmp_path: Path, db: Database) -> None:
    network(db, "10.52.0.0/23", "10.52.0.1")
    pids = []
    for p in range(6):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                _allocate_many(str(tmp_path), [f"p{p}-{i}" for i in range(40)])
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    assert [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids] == [0] * 6
    allocs = Ipam(db).allocations()
    assert len(allocs) == 240
    assert len({ip for _n, ip, _o in allocs}) == 240


def test_a_process_dying_mid_allocation_leaves_nothing_and_no_lock(tmp_path: Path, db: Database) -> None:
    net = network(db)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        child = Database(str(tmp_path))
        conn = child.conn
        conn.execute("BEGIN IMMEDIATE")
        Ipam(child).allocate_in(conn, child.network_by_id("n1"), "dies")  # type: ignore[arg-type]
        os._exit(0)  # killed before COMMIT
    os.waitpid(pid, 0)
    ipam = Ipam(db)
    assert ipam.allocations() == []
    assert ipam.allocate(net, "next") == "10.50.0.2"  # the lock died with the process


def test_reconcile_releases_what_dead_owners_hold(db: Database) -> None:
    net = network(db)
    ipam = Ipam(db)
    for owner in ("alive", "dead1", "dead2"):
        ipam.allocate(net, owner)
    released = ipam.reconcile(lambda owner: owner == "alive")
    assert sorted(o for _n, _ip, o in released) == ["dead1", "dead2"]
    assert [o for _n, _ip, o in ipam.allocations()] == ["alive"]


def test_subnet_checks() -> None:
    assert check_subnet("10.9.0.0/16", None) == ("10.9.0.0/16", "10.9.0.1")
    assert check_subnet("10.9.0.0/24", "10.9.0.254") == ("10.9.0.0/24", "10.9.0.254")
    for bad in ("10.9.0.1/24", "10.9.0.0/31", "fd00::/64", "nonsense"):
        with pytest.raises(InvalidArgument):
            check_subnet(bad, None)
    with pytest.raises(InvalidArgument, match="gateway"):
        check_subnet("10.9.0.0/24", "10.9.1.1")
    assert overlap("10.0.0.0/8", "10.9.0.0/24") and not overlap("10.9.0.0/24", "10.9.1.0/24")

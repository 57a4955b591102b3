"""Crashes: a process that dies after or during setup leaves records, a namespace, veths and nftables
elements; check() must name them, recover()/teardown()/a fresh setup must remove them exactly."""

from __future__ import annotations

import os
import subprocess

import pytest

pytestmark = pytest.mark.root


def cid() -> str:
    return os.urandom(32).hex()


def crash_in(fn) -> int:  # type: ignore[no-untyped-def]
    """Run ``fn`` in a child that dies (os._exit) without any cleanup; return its exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            fn()
        finally:
            os._exit(7)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_crash_after_setup_is_found_and_recovered(netsb) -> None:
    a = cid()

    def body() -> tuple:
        netsb.service().create("kbt-crash", subnet="10.202.1.0/24")
        crash_in(
            lambda: netsb.service().setup(a, "doomed", ["kbt-crash"], [], None, ["18090:80"], [], [], [])
        )
        svc = netsb.service()
        quiet = svc.check()  # nothing says it is not running: a mounted namespace is a live one
        found = svc.check(live_containers=set())
        done = svc.recover(live_containers=set())
        return quiet, found, done, svc.check(live_containers=set()), svc.ipam.allocations()

    quiet, found, done, after, allocs = netsb.call(body)
    assert quiet == []
    assert any("not running" in f for f in found)
    assert all(d.startswith("removed:") for d in done) and done
    assert after == [] and allocs == []
    assert not [n for n in netsb.links() if n.startswith("kv")]
    assert "18090" not in netsb.ruleset()


def test_crash_in_the_middle_of_setup_is_cleaned_by_the_next_setup(netsb) -> None:
    a = cid()

    def body() -> tuple:
        netsb.service().create("kbt-mid", subnet="10.202.2.0/24")

        def die_half_way() -> None:
            from kobako.engine.network import bridge

            def boom(*args: object, **kw: object) -> None:
                os._exit(9)  # veth made, address not yet: the worst moment

            bridge.configure_inside = boom  # type: ignore[assignment]
            netsb.service().setup(a, "half", ["kbt-mid"], [], None, [], [], [], [])

        status = crash_in(die_half_way)
        svc = netsb.service()
        leftovers = (svc.db.sandbox(a) is not None, len(svc.ipam.allocations()))
        result = svc.setup(a, "half", ["kbt-mid"], [], None, [], [], [], [])
        return status, leftovers, result, svc.ipam.allocations(), svc.check()

    status, leftovers, result, allocs, leaks = netsb.call(body)
    assert status == 9
    assert leftovers == (True, 1)
    assert [ip for _n, ip, _o in allocs] == [result["networks"]["kbt-mid"]["IPAddress"]]
    assert leaks == []
    assert len([n for n in netsb.links() if n.startswith("kv")]) == 1  # the half-made veth is gone


def test_records_whose_namespace_vanished_are_reported_and_torn_down(netsb) -> None:
    """As after a reboot: /run is empty again, the database still lists the container."""
    a = cid()

    def setup() -> str:
        svc = netsb.service()
        svc.create("kbt-boot", subnet="10.202.3.0/24")
        return svc.setup(a, "old", ["kbt-boot"], [], None, [], [], [], [])["netns_path"]

    path = netsb.call(setup)
    subprocess.run(["umount", path], check=True)
    os.unlink(path)

    def body() -> tuple:
        svc = netsb.service()
        found = svc.check()
        svc.recover()
        return found, svc.check(), svc.ipam.allocations(), svc.db.sandboxes()

    found, after, allocs, sandboxes = netsb.call(body)
    assert any("without a network namespace" in f for f in found)
    assert after == [] and allocs == [] and sandboxes == []
    assert not [n for n in netsb.links() if n.startswith("kv")]


def test_foreign_leftovers_are_reported(netsb, tmp_path) -> None:
    """A kv* veth, a kb-* bridge and a port element that no record explains; a stray namespace file."""

    def body() -> tuple:
        svc = netsb.service()
        svc.create("kbt-x", subnet="10.202.4.0/24")
        a = cid()
        svc.setup(a, "x", ["kbt-x"], [], None, [], [], [], [])
        svc.nft().run("add element ip kobako tcp_any { 18099 : 10.202.4.77 . 80 }")
        os.makedirs(svc.netns_dir, exist_ok=True)
        open(os.path.join(svc.netns_dir, "f" * 64), "w").close()
        return svc

    netsb.call(lambda: (body(), None)[1])
    netsb.cmd("ip", "link", "add", "kvstray0", "type", "veth", "peer", "name", "kvstray1")
    netsb.cmd("ip", "link", "add", "kb-stray", "type", "bridge")

    def check() -> tuple:
        svc = netsb.service()
        found = svc.check()
        svc.recover()
        return found, svc.check()

    found, after = netsb.call(check)
    text = "\n".join(found)
    assert "veth kvstray0" in text and "bridge kb-stray" in text
    assert "18099 : 10.202.4.77 . 80" in text
    assert "f" * 64 in text
    assert after == []
    assert "18099" not in netsb.ruleset()

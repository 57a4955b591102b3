"""``kobako network ...`` through the real launcher, inside the test's namespace, on a private root."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

KOBAKO = str(Path(sys.executable).parent / "kobako")


@pytest.fixture
def kobako(netsb):  # type: ignore[no-untyped-def]
    env = {**os.environ, "KOBAKO_ROOT": str(netsb.root)}

    def run(*args: str, check: bool = True, input: str | None = None):  # type: ignore[no-untyped-def]
        proc = netsb.cmd(KOBAKO, *args, check=False, env=env, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"kobako {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


def fake_record(root: Path, name: str) -> str:
    """What the engine's record store holds for a container (only what connect needs)."""
    cid = os.urandom(32).hex()
    (root / "containers" / cid).mkdir(parents=True)
    (root / "containers" / cid / "config.json").write_text(json.dumps({"id": cid, "name": name}))
    names = root / "containers" / ".names"
    names.mkdir(exist_ok=True)
    os.symlink(cid, names / name)
    return cid


def test_create_ls_inspect_rm_prune(kobako) -> None:
    nid = kobako("network", "create", "--subnet", "10.204.1.0/24", "--gateway", "10.204.1.254", "--internal",
                 "--label", "team=net", "kbt-one").stdout.strip()  # fmt: skip
    assert len(nid) == 64
    kobako("network", "create", "kbt-two")
    assert "already exists" in kobako("network", "create", "kbt-two", check=False).stderr
    assert (
        "overlaps" in kobako("network", "create", "--subnet", "10.204.1.128/25", "kbt-3", check=False).stderr
    )
    assert kobako("network", "create", "--subnet", "10.204.9.1/24", "kbt-4", check=False).returncode == 125

    table = kobako("network", "ls").stdout.splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert {line.split()[1] for line in table[1:]} == {"bridge", "kbt-one", "kbt-two"}
    assert nid[:12] in kobako("network", "ls", "-q").stdout.split()
    rows = [json.loads(line) for line in kobako("network", "ls", "--format", "json").stdout.splitlines()]
    assert {r["Name"]: r["Internal"] for r in rows}["kbt-one"] == "true"

    (info,) = json.loads(kobako("network", "inspect", "kbt-one").stdout)
    assert info["Name"] == "kbt-one" and info["Id"] == nid and info["Driver"] == "bridge"
    assert info["Scope"] == "local" and info["Internal"] is True and info["Labels"] == {"team": "net"}
    assert info["IPAM"]["Config"] == [{"Subnet": "10.204.1.0/24", "Gateway": "10.204.1.254"}]
    assert info["Containers"] == {}
    (two,) = json.loads(kobako("network", "inspect", "kbt-two").stdout)
    assert two["IPAM"]["Config"][0]["Subnet"].startswith("10.89.")
    assert kobako("network", "inspect", "-f", "{{.Name}}", "kbt-one").stdout.strip() == "kbt-one"
    missing = kobako("network", "inspect", "kbt-nope", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr

    assert kobako("network", "rm", "kbt-one").stdout.split() == ["kbt-one"]
    assert "cannot be removed" in kobako("network", "rm", "bridge", check=False).stderr
    assert kobako("network", "prune", "-f").stdout.split() == ["Deleted", "Networks:", "kbt-two"]
    assert kobako("network", "prune", input="n\n").returncode == 0
    assert kobako("network", "ls", "-q").stdout.count("\n") == 1  # only the default network


def test_connect_and_disconnect_by_container_name(netsb, kobako) -> None:
    cid = fake_record(netsb.root, "app")

    def setup() -> str:
        svc = netsb.service()
        svc.create("kbt-front", subnet="10.204.2.0/24")
        svc.create("kbt-back", subnet="10.204.3.0/24")
        return svc.setup(cid, "app", ["kbt-front"], [], None, [], [], [], [])["netns_path"]

    path = netsb.call(setup)
    kobako("network", "connect", "--ip", "10.204.3.9", "--alias", "db", "kbt-back", "app")
    (info,) = json.loads(kobako("network", "inspect", "kbt-back").stdout)
    assert info["Containers"][cid]["IPv4Address"] == "10.204.3.9/24"
    assert info["Containers"][cid]["Name"] == "app"
    assert "10.204.3.9/24" in netsb.cmd("nsenter", f"--net={path}", "ip", "-o", "addr").stdout
    busy = kobako("network", "rm", "kbt-back", check=False)
    assert busy.returncode == 1 and "active endpoints (app)" in busy.stderr
    kobako("network", "disconnect", "kbt-back", "app")
    assert "10.204.3.9" not in netsb.cmd("nsenter", f"--net={path}", "ip", "-o", "addr").stdout
    assert kobako("network", "disconnect", "kbt-back", "app", check=False).returncode == 1
    kobako("network", "disconnect", "-f", "kbt-back", "app")
    assert "no such container" in kobako("network", "connect", "kbt-back", "ghost", check=False).stderr
    kobako("network", "rm", "-f", "kbt-front", "kbt-back")
    assert netsb.call(lambda: netsb.service().db.endpoints()) == []


def test_create_with_an_mtu_option_and_bad_options(kobako) -> None:
    kobako("network", "create", "-o", "mtu=1400", "kbt-small")
    (info,) = json.loads(kobako("network", "inspect", "kbt-small").stdout)
    assert info["Options"]["mtu"] == "1400" and info["Options"]["com.docker.network.driver.mtu"] == "1400"
    kobako("network", "create", "--opt", "com.docker.network.driver.mtu=9000", "kbt-jumbo")
    (jumbo,) = json.loads(kobako("network", "inspect", "kbt-jumbo").stdout)
    assert jumbo["Options"]["com.docker.network.driver.mtu"] == "9000"
    kobako("network", "create", "kbt-plain")
    (plain,) = json.loads(kobako("network", "inspect", "kbt-plain").stdout)
    assert plain["Options"]["com.docker.network.driver.mtu"] == "65535"
    for bad, says in ((["-o", "mtu=99999"], "an MTU from 68 to 65535"), (["-o", "mtu=big"], "an MTU"),
                      (["-o", "com.docker.network.bridge.enable_icc=false"], "unsupported network option"),
                      (["-o", "mtu"], "an MTU"), (["-o", "=1400"], "empty name")):  # fmt: skip
        proc = kobako("network", "create", *bad, "kbt-bad", check=False)
        assert proc.returncode != 0 and says in proc.stderr, (bad, proc.stderr)
    assert "kbt-bad" not in kobako("network", "ls").stdout

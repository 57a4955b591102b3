"""Real containers (kobako-runtime, busybox) in the namespaces NetworkService makes: httpd in one, wget
by name from another, /etc/hosts bind-mounted as the engine will do it.

Debian's busybox 1.35 wget crashes with -T: timeouts come from the timeout applet, run under sh (which must
not exec its last command) so that wget is not PID 1, which would ignore the signal.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kobako.testing.runtime_cli import Runtime, runtime_bin, unique

pytestmark = pytest.mark.root


def cid() -> str:
    return os.urandom(32).hex()


@pytest.fixture
def nsruntime(netsb, tmp_path: Path):  # type: ignore[no-untyped-def]
    """kobako-runtime started inside the test's namespace (nsenter keeps the mount namespace, so
    /sys/fs/cgroup is still there)."""
    wrapper = tmp_path / "runtime.sh"
    wrapper.write_text(f'#!/bin/sh\nexec nsenter --net={netsb.path} {runtime_bin()} "$@"\n')
    wrapper.chmod(0o755)
    rt = Runtime(tmp_path / "rtstate", binary=str(wrapper))
    yield rt
    rt.cleanup()


def bundle_for(make_bundle, args: list[str], netns_path: str, hosts: Path,  # type: ignore[no-untyped-def]
               page: str = "") -> Path:  # fmt: skip
    def edit(spec: dict) -> None:
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = netns_path
        spec["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": str(hosts),
                               "options": ["rbind", "ro"]})  # fmt: skip

    bundle = make_bundle(args, edit)
    if page:
        www = bundle / "rootfs" / "www"
        www.mkdir()
        (www / "index.html").write_text(page)
    return bundle


def test_containers_reach_each_other_by_name_and_not_across_networks(netsb, nsruntime, make_bundle,
                                                                     tmp_path) -> None:  # fmt: skip
    ids = {"web": cid(), "client": cid(), "other": cid()}
    hosts = {}
    for name in ids:
        hosts[name] = tmp_path / f"{name}.hosts"
        hosts[name].write_text("127.0.0.1\tlocalhost\n")

    def setup() -> dict:
        svc = netsb.service()
        svc.create("kbt-app", subnet="10.203.1.0/24")
        svc.create("kbt-elsewhere", subnet="10.203.2.0/24")
        return {
            name: svc.setup(ids[name], name, [net], ["www"] if name == "web" else [], None, [], [], [], [],
                            hosts_file=str(hosts[name]))
            for name, net in (("web", "kbt-app"), ("client", "kbt-app"), ("other", "kbt-elsewhere"))
        }  # fmt: skip

    res = netsb.call(setup)
    web = bundle_for(make_bundle, ["httpd", "-f", "-p", "80", "-h", "/www"], res["web"]["netns_path"],
                     hosts["web"], page="hello from kobako\n")  # fmt: skip
    web_id = unique("web")
    nsruntime("run", "-d", "-b", str(web), web_id)
    try:
        for target in ("web", "www", ids["web"][:12]):
            client = bundle_for(make_bundle, ["wget", "-q", "-O", "-", f"http://{target}/"],
                                res["client"]["netns_path"], hosts["client"])  # fmt: skip
            out = nsruntime("run", "-b", str(client), unique("client"), check=False)
            assert out.returncode == 0, out.stderr
            assert out.stdout == "hello from kobako\n"
        web_ip = res["web"]["networks"]["kbt-app"]["IPAddress"]
        for target in ("web", web_ip):  # another network: neither the name nor the address
            other = bundle_for(make_bundle, ["sh", "-c", f"timeout 3 wget -q -O - http://{target}/; exit $?"],
                               res["other"]["netns_path"], hosts["other"])  # fmt: skip
            assert nsruntime("run", "-b", str(other), unique("other"), check=False).returncode != 0
    finally:
        nsruntime("kill", web_id, "KILL", check=False)
        nsruntime("delete", "--force", web_id, check=False)

    def down() -> list:
        svc = netsb.service()
        for c in ids.values():
            svc.teardown(c)
        svc.remove("kbt-app")
        svc.remove("kbt-elsewhere")
        return svc.check()

    assert netsb.call(down) == []
    assert netsb.links() == ["lo"]
    assert "kobako" not in netsb.ruleset()


def test_published_port_of_a_real_container_from_localhost(netsb, nsruntime, make_bundle, tmp_path) -> None:
    c = cid()
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")

    def setup() -> dict:
        svc = netsb.service()
        svc.create("kbt-pub", subnet="10.203.3.0/24")
        return svc.setup(c, "site", ["kbt-pub"], [], None, ["127.0.0.1:18180:80"], [], [], [],
                         hosts_file=str(hosts))  # fmt: skip

    res = netsb.call(setup)
    web = bundle_for(make_bundle, ["httpd", "-f", "-p", "80", "-h", "/www"], res["netns_path"], hosts,
                     page="published\n")  # fmt: skip
    web_id = unique("web")
    nsruntime("run", "-d", "-b", str(web), web_id)
    try:
        out = netsb.cmd(
            "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:18180/", check=False, timeout=20
        )
        assert out.stdout == "published\n", out.stderr
    finally:
        nsruntime("kill", web_id, "KILL", check=False)
        nsruntime("delete", "--force", web_id, check=False)
    netsb.call(lambda: netsb.service().teardown(c))
    assert "18180" not in netsb.ruleset()

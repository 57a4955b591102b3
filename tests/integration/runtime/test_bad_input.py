"""Bad input: a clear message naming the problem, a non-zero exit, and nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kobako.testing.runtime_cli import unique

pytestmark = pytest.mark.root


def leftovers(cid: str) -> list[str]:
    found = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/kobako/{cid}")]
    found += [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if cid in line]
    return found


def assert_refused(runtime, bundle: Path, cid: str, *needles: str) -> None:  # type: ignore[no-untyped-def]
    proc = runtime("create", "--bundle", str(bundle), cid, check=False)
    assert proc.returncode != 0
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert not (runtime.root / cid).exists()
    assert leftovers(cid) == []


def test_malformed_config_json(runtime, make_bundle) -> None:
    bundle = make_bundle()
    (bundle / "config.json").write_text('{"ociVersion": "1.0.2", "process": ')
    assert_refused(runtime, bundle, unique(), "config.json")


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda s: s["process"].update(args=[]), "process.args"),
        (lambda s: s["process"].update(cwd="relative"), "process.cwd"),
        (lambda s: s["process"]["user"].update(uid="root"), "process.user.uid"),
        (lambda s: s["linux"]["namespaces"].append({"type": "bogus"}), "unknown namespace type 'bogus'"),
        (lambda s: s["mounts"].append({"destination": "rel", "type": "tmpfs"}), "mounts[7].destination"),
        (lambda s: s["process"]["capabilities"]["bounding"].append("CAP_NOT_REAL"), "CAP_NOT_REAL"),
        (lambda s: s["linux"].update(namespaces=[{"type": "network", "path": "/no/such/ns"}]), "/no/such/ns"),
        (lambda s: s["linux"].update(seccomp={"defaultAction": "SCMP_ACT_EXPLODE"}), "SCMP_ACT_EXPLODE"),
    ],
)
def test_invalid_fields_are_named(runtime, make_bundle, edit, needle) -> None:
    bundle = make_bundle(edit=edit)
    assert_refused(runtime, bundle, unique(), needle)


def test_missing_rootfs(runtime, make_bundle) -> None:
    bundle = make_bundle(edit=lambda s: s["root"].update(path="nowhere"))
    assert_refused(runtime, bundle, unique(), "rootfs", "does not exist")


def test_missing_executable_fails_create(runtime, make_bundle) -> None:
    bundle = make_bundle(["/bin/does-not-exist"])
    assert_refused(runtime, bundle, unique(), "does-not-exist")


def test_missing_bundle(runtime, tmp_path) -> None:
    proc = runtime("create", "--bundle", str(tmp_path / "nope"), unique(), check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stderr


def test_duplicate_id_keeps_the_first_container(runtime, make_bundle) -> None:
    bundle = make_bundle(["sleep", "300"])
    cid = unique()
    runtime("create", "-b", str(bundle), cid)
    first = runtime.state(cid)
    proc = runtime("create", "-b", str(bundle), cid, check=False)
    assert proc.returncode != 0 and "already exists" in proc.stderr
    assert runtime.state(cid) == first


@pytest.mark.parametrize("bad", ["SIGNOPE", "0", "65", "-3", "RTMAX+1"])
def test_bad_signal(runtime, make_bundle, bad) -> None:
    bundle = make_bundle(["sleep", "300"])
    cid = unique()
    runtime("run", "-d", "-b", str(bundle), cid)
    proc = runtime("kill", cid, bad, check=False)
    assert proc.returncode != 0 and ("signal" in proc.stderr or "flag" in proc.stderr)
    assert runtime.state(cid)["status"] == "running"


@pytest.mark.parametrize("cid", ["../escape", "a/b", "", "..", "sp ace"])
def test_invalid_container_ids(runtime, make_bundle, cid) -> None:
    proc = runtime("create", "-b", str(make_bundle()), cid, check=False)
    assert proc.returncode != 0
    assert not (runtime.root.parent / "escape").exists()


def test_unknown_command_and_flag(runtime) -> None:
    assert "no such command" in runtime("frobnicate", check=False).stderr
    proc = runtime("create", "--frob", "x", check=False)
    assert proc.returncode != 0 and "frob" in proc.stderr


def test_state_of_unknown_container(runtime) -> None:
    proc = runtime("state", "nope", check=False)
    assert proc.returncode != 0 and "does not exist" in proc.stderr


def test_no_state_dir_left_when_init_fails(runtime, make_bundle) -> None:
    # A mount of a source that does not exist fails inside the init, after the parent made the state dir.
    def edit(spec: dict) -> None:
        spec["mounts"].append(
            {"destination": "/x", "type": "bind", "source": "/no/such/source", "options": ["bind"]}
        )

    cid = unique()
    assert_refused(runtime, make_bundle(edit=edit), cid, "/no/such/source")
    assert json.loads(runtime("list", "-f", "json").stdout) == []
    assert os.listdir(runtime.root) == []

"""What the spec asks for is what the container sees: namespaces, mounts, /dev, identity, limits, hooks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kobako.testing.runtime_cli import unique

pytestmark = pytest.mark.root


def run_in(runtime, make_bundle, script: str, edit=None, check: bool = True):  # type: ignore[no-untyped-def]
    bundle = make_bundle(["sh", "-c", script], edit)
    return runtime("run", "-b", str(bundle), unique(), check=check)


def test_own_pid_namespace_hostname_and_no_host_pids(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["hostname"] = "box"
        spec["domainname"] = "example.internal"

    out = run_in(
        runtime,
        make_bundle,
        "echo $$; hostname; cat /proc/sys/kernel/domainname; ls /proc | grep -c '^[0-9]'",
        edit,
    )
    pid, hostname, domain, nprocs = out.stdout.split()
    assert pid == "1"
    assert hostname == "box"
    assert domain == "example.internal"
    assert int(nprocs) <= 3  # sh, ls, grep: nothing of the host


def test_default_capabilities_and_no_new_privs(runtime, make_bundle) -> None:
    status = run_in(runtime, make_bundle, "cat /proc/self/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    expected = (1 << 29) | (1 << 5) | (1 << 10)  # AUDIT_WRITE, KILL, NET_BIND_SERVICE
    assert int(fields["CapEff"], 16) == expected
    assert int(fields["CapBnd"], 16) == expected
    assert int(fields["CapPrm"], 16) == expected
    assert fields["NoNewPrivs"].strip() == "1"


def test_user_namespace_maps_ids(runtime, make_bundle, tmp_path) -> None:
    def edit(spec: dict) -> None:
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    bundle = make_bundle(
        ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/mine"], edit
    )
    # The mapped root is an unprivileged host user: it must be able to walk to its bundle.
    for parent in [bundle, *bundle.parents]:
        if str(parent).startswith("/tmp/"):
            parent.chmod(parent.stat().st_mode | 0o755)
    out = runtime("run", "-b", str(bundle), unique()).stdout.split()
    assert out == ["0", "100000", "65536", "0", "100000", "65536", "0"]
    assert (bundle / "rootfs/tmp/mine").stat().st_uid == 100000


def test_mounts_have_the_requested_flags(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["root"]["readonly"] = True

    mountinfo = run_in(runtime, make_bundle, "cat /proc/self/mountinfo", edit).stdout
    mounts = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        mounts[fields[4]] = (fields[5].split(","), right.split()[0])
    assert "ro" in mounts["/"][0]
    assert mounts["/proc"][1] == "proc"
    assert mounts["/dev"][1] == "tmpfs" and "nosuid" in mounts["/dev"][0]
    assert mounts["/dev/shm"][1] == "tmpfs" and {"nosuid", "nodev", "noexec"} <= set(mounts["/dev/shm"][0])
    assert mounts["/dev/pts"][1] == "devpts"
    assert mounts["/dev/mqueue"][1] == "mqueue"
    assert mounts["/sys"][1] == "sysfs" and "ro" in mounts["/sys"][0]
    assert "ro" in mounts["/proc/sys"][0]
    assert mounts["/sys/fs/cgroup"][1] == "tmpfs"
    assert mounts["/sys/fs/cgroup/memory"][1] == "cgroup" and "ro" in mounts["/sys/fs/cgroup/memory"][0]


def test_bind_mounts_with_options_and_tmpfs(runtime, make_bundle, tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from host\n")

    def edit(spec: dict) -> None:
        spec["mounts"] += [
            {
                "destination": "/data",
                "type": "bind",
                "source": str(shared),
                "options": ["rbind", "ro", "nosuid"],
            },
            {
                "destination": "/scratch",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["size=1m", "mode=700"],
            },
        ]

    out = run_in(runtime, make_bundle, "cat /data/hello; touch /data/x 2>&1 || echo refused; stat -c %a /scratch; "
                 "grep ' /scratch ' /proc/self/mountinfo", edit).stdout  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "from host"
    assert "Read-only" in lines[1] and lines[2] == "refused"
    assert "700" in out
    assert not (shared / "x").exists()


def test_masked_and_readonly_paths(runtime, make_bundle) -> None:
    out = run_in(
        runtime,
        make_bundle,
        "cat /proc/kcore 2>/dev/null | head -c 50 | wc -c; ls /sys/firmware | wc -l; "
        "echo 1 > /proc/sysrq-trigger 2>/dev/null && echo wrote-sysrq || echo sysrq-refused; "
        "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo wrote-sys || echo sys-refused",
    ).stdout.split()
    assert out == ["0", "0", "sysrq-refused", "sys-refused"]


def test_default_devices(runtime, make_bundle) -> None:
    out = run_in(
        runtime, make_bundle,
        "ls -1 /dev | sort | tr '\\n' ' '; echo; head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo ok; "
        "readlink /dev/fd; readlink /dev/ptmx; ls /dev/kmsg /dev/sda 2>&1 | grep -c 'No such'",
    ).stdout.splitlines()  # fmt: skip
    names = set(out[0].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx", "fd", "stdin", "stdout",
            "stderr", "mqueue"} <= names  # fmt: skip
    assert out[1].strip() == "4"
    assert out[2] == "ok"
    assert out[3:5] == ["/proc/self/fd", "pts/ptmx"]
    assert out[5] == "2"


def test_linux_devices_are_created(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["linux"]["devices"] = [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600}
        ]
        spec["linux"]["resources"]["devices"].append(
            {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
        )

    out = run_in(runtime, make_bundle, "stat -c '%t %T %a' /dev/fuse", edit).stdout.split()
    assert out == ["a", "e5", "600"]


def test_process_user_env_cwd_umask_and_groups(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001], "umask": 0o077}
        spec["process"]["env"].append("GREETING=hi there")
        spec["process"]["cwd"] = "/tmp"

    out = run_in(
        runtime, make_bundle, 'id -u; id -g; id -G; echo "$GREETING"; pwd; umask', edit
    ).stdout.splitlines()
    assert out[0] == "1000" and out[1] == "1001"
    assert set(out[2].split()) == {"1001", "2000", "2001"}
    assert out[3] == "hi there" and out[4] == "/tmp" and out[5] == "0077"


def test_sysctl_rlimits_and_oom_score_adj(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]
        spec["process"]["oomScoreAdj"] = 123

    out = run_in(
        runtime,
        make_bundle,
        "cat /proc/sys/net/ipv4/ip_forward; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj",
        edit,
    )
    assert out.stdout.split() == ["1", "321", "654", "123"]


def test_rlimit_above_the_host_hard_limit_is_a_clear_error(runtime, make_bundle) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def edit(spec: dict) -> None:
        spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]

    proc = run_in(runtime, make_bundle, "true", edit, check=False)
    assert proc.returncode != 0
    assert "RLIMIT_NOFILE" in proc.stderr and "host's hard limit" in proc.stderr


def test_seccomp_profile_is_enforced(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        }

    out = run_in(
        runtime, make_bundle, "grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; echo rc=$?", edit
    ).stdout
    assert "Seccomp:\t2" in out
    assert "Operation not permitted" in out and "rc=1" in out


def test_cgroup_namespace_shows_own_cgroup_as_root(runtime, make_bundle) -> None:
    out = run_in(runtime, make_bundle, "cat /proc/self/cgroup").stdout
    for line in out.splitlines():
        assert line.rsplit(":", 1)[1] == "/", line


def test_joining_an_existing_network_namespace_by_path(runtime, make_bundle) -> None:
    name = unique("kbns")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # A marker only this namespace has: loopback up with an extra address.
        subprocess.run(
            ["ip", "netns", "exec", name, "ip", "addr", "add", "127.0.0.42/8", "dev", "lo"], check=True
        )
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)

        def edit(spec: dict) -> None:
            for ns in spec["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = f"/var/run/netns/{name}"

        assert "127.0.0.42" in run_in(runtime, make_bundle, "ip addr show lo", edit).stdout
        assert "127.0.0.42" not in run_in(runtime, make_bundle, "ip addr show lo").stdout
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_hooks_run_in_order_with_the_state_on_stdin(runtime, make_bundle, tmp_path) -> None:
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    script.write_text(f'#!/bin/sh\nread -r state\necho "$1 $state" >> {log}\n')
    script.chmod(0o755)

    def edit(spec: dict) -> None:
        spec["hooks"] = {
            kind: [{"path": str(script), "args": ["hook.sh", kind], "timeout": 10}]
            for kind in ("prestart", "createRuntime", "poststart", "poststop")
        }
        # createContainer/startContainer run inside the container: a path that exists there too.
        inner = {"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null"]}
        spec["hooks"]["createContainer"] = [inner]
        spec["hooks"]["startContainer"] = [inner]

    bundle = make_bundle(["true"], edit)
    cid = unique()
    runtime("run", "-b", str(bundle), cid)
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["prestart", "createRuntime", "poststart", "poststop"]
    states = [json.loads(line.split(" ", 1)[1]) for line in lines]
    assert all(s["id"] == cid for s in states)
    assert states[-1]["status"] == "stopped"


def test_failing_hook_fails_create_and_cleans_up(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}

    bundle = make_bundle(["true"], edit)
    cid = unique()
    proc = runtime("create", "-b", str(bundle), cid, check=False)
    assert proc.returncode != 0 and "createRuntime hook" in proc.stderr
    assert not (runtime.root / cid).exists()
    assert not Path(f"/sys/fs/cgroup/pids/kobako/{cid}").exists()


def test_console_socket_receives_the_pty_master(runtime, make_bundle, tmp_path) -> None:
    import array
    import socket

    sock_path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)

    def edit(spec: dict) -> None:
        spec["process"]["terminal"] = True

    bundle = make_bundle(["sh", "-c", "tty; echo is-a-tty"], edit)
    cid = unique()
    try:
        runtime("create", "-b", str(bundle), "--console-socket", sock_path, cid)
        conn, _ = server.accept()
        fds = array.array("i")
        _msg, ancdata, _flags, _addr = conn.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
        fds.frombytes(ancdata[0][2][: fds.itemsize])
        master = fds[0]
        runtime("start", cid)
        data = b""
        while b"is-a-tty" not in data:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        assert b"/dev/pts/" in data and b"is-a-tty" in data
        os.close(master)
        conn.close()
    finally:
        server.close()


def test_new_session_keyring_unless_asked_not_to(runtime, make_bundle) -> None:
    bundle = make_bundle(["true"])
    cid = unique()
    runtime("create", "-b", str(bundle), cid)
    assert f"_ses.{cid}" in Path("/proc/keys").read_text()  # the init joined a keyring of its own
    runtime("delete", "--force", cid)
    other = unique()
    runtime("create", "--no-new-keyring", "-b", str(bundle), other)
    assert f"_ses.{other}" not in Path("/proc/keys").read_text()
    runtime("delete", "--force", other)


def test_time_namespace_offsets(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["linux"]["namespaces"].append({"type": "time"})
        spec["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0}}

    uptime = float(run_in(runtime, make_bundle, "cut -d' ' -f1 /proc/uptime", edit).stdout)
    assert uptime > 86400 * 365


def test_init_annotation_keeps_a_reaping_pid1(runtime, make_bundle) -> None:
    def edit(spec: dict) -> None:
        spec["annotations"] = {"org.kobako.init": "true"}

    # The user's shell is not PID 1; an orphan (the backgrounded sleep's parent exits) gets reaped.
    script = "echo $$; (sleep 0.2 &); sleep 0.5; ps -o pid,stat,comm | grep -c ' Z ' ; exit 5"
    proc = run_in(runtime, make_bundle, script, edit, check=False)
    lines = proc.stdout.split()
    assert lines[0] != "1"
    assert lines[1] == "0"  # no zombies left behind
    assert proc.returncode == 5


def test_unlimited_rlimit_is_rlim_infinity(runtime, make_bundle) -> None:
    import resource

    if resource.getrlimit(resource.RLIMIT_CORE)[1] != resource.RLIM_INFINITY:
        pytest.skip("the host's RLIMIT_CORE hard limit is finite")

    def edit(spec: dict) -> None:
        spec["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]

    assert run_in(runtime, make_bundle, "ulimit -c; ulimit -Hc", edit).stdout.split() == [
        "unlimited",
        "unlimited",
    ]


def test_the_process_starts_with_default_signal_dispositions(runtime, make_bundle) -> None:
    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal survives execve: the runtime resets them.
    bundle = make_bundle(["grep", "SigIgn", "/proc/self/status"])  # not through sh: a shell sets its own
    out = runtime("run", "-b", str(bundle), unique()).stdout.split()
    assert out == ["SigIgn:", "0000000000000000"]

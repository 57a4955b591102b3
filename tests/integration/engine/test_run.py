"""`kobako run`/`create`/`start`: foreground output and exit codes, stdin, tty, --rm, failures leave nothing."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.root


def test_foreground_output_and_exit_code(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako("run", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert proc.returncode == 3
    assert proc.stdout == "out\n"
    assert proc.stderr == "err\n"
    assert kobako.status(kobako("ps", "-aq").stdout.strip()) == "exited"


def test_rm_removes_the_container_after_exit(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako("run", "--rm", "busybox", "true", check=False)
    assert proc.returncode == 0
    assert kobako("ps", "-aq").stdout == ""
    assert kobako.ids() == []


def test_stdin_is_forwarded_with_i(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z; echo done", input=b"hello\n")
    assert proc.stdout == "HELLO\ndone\n"


def test_without_i_stdin_is_empty(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako("run", "--rm", "busybox", "cat", input=b"ignored\n")
    assert proc.stdout == ""


def test_tty_gives_a_real_terminal(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako(
        "run", "--rm", "-t", "busybox", "sh", "-c", "tty; test -t 1 && echo isatty; exit 5", check=False
    )
    assert proc.returncode == 5
    assert "/dev/pts/" in proc.stdout and "isatty" in proc.stdout


def test_env_workdir_user_and_hostname(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako("run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "--hostname", "box", "busybox",
                  "sh", "-c", 'echo "$A $(pwd) $(id -u) $(hostname)"')  # fmt: skip
    assert proc.stdout == "1 /tmp 65534 box\n"


def test_missing_image_is_125_and_leaves_nothing(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako("run", "--rm", "nosuchimage", "true", check=False)
    assert proc.returncode == 125
    assert "no such image" in proc.stderr.lower()
    assert kobako.ids() == []


def test_missing_command_is_127_and_leaves_nothing(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako("run", "--name", "nope", "busybox", "/no/such/cmd", check=False)
    assert proc.returncode == 127
    assert "no such file" in proc.stderr.lower() or "not found" in proc.stderr.lower()
    assert kobako.ids() == []
    assert (
        kobako("run", "--rm", "--name", "nope", "busybox", "true").returncode == 0
    )  # the name is free again


def test_name_conflict(kobako) -> None:  # type: ignore[no-untyped-def]
    kobako("create", "--name", "dup", "busybox", "true")
    proc = kobako("run", "--name", "dup", "busybox", "true", check=False)
    assert proc.returncode == 125
    assert 'the container name "/dup" is already in use' in proc.stderr
    assert len(kobako.ids()) == 1


def test_create_then_start_attached(kobako) -> None:  # type: ignore[no-untyped-def]
    cid = kobako("create", "--name", "later", "busybox", "sh", "-c", "echo started; exit 2").stdout.strip()
    assert len(cid) == 64
    assert kobako.status("later") == "created"
    assert "Created" in kobako("ps", "-a").stdout
    proc = kobako("start", "-a", "later", check=False)
    assert proc.returncode == 2 and proc.stdout == "started\n"
    assert kobako.inspect("later")["State"]["ExitCode"] == 2
    kobako("start", "later")  # again, detached
    assert kobako("wait", "later").stdout.strip() == "2"
    assert kobako("logs", "later").stdout == "started\nstarted\n"


def test_read_only_root(kobako) -> None:  # type: ignore[no-untyped-def]
    proc = kobako("run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /x", check=False)
    assert proc.returncode != 0
    assert "read-only" in proc.stderr.lower()


def test_network_modes(kobako) -> None:  # type: ignore[no-untyped-def]
    none = kobako("run", "--rm", "--network", "none", "busybox", "cat", "/proc/net/dev").stdout
    assert [line.split(":")[0].strip() for line in none.splitlines()[2:]] == ["lo"]
    host = kobako("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev").stdout
    assert len(host.splitlines()) > len(none.splitlines())


def test_interactive_tty_from_a_terminal(kobako) -> None:  # type: ignore[no-untyped-def]
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    from .conftest import KOBAKO

    pid, fd = pty.fork()
    if pid == 0:  # the CLI on a real terminal of 30x100
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execve(KOBAKO, [KOBAKO, "run", "--rm", "-it", "busybox", "sh"], kobako.env)
    out = b""

    def read_until(marker: bytes, timeout: float = 10) -> None:
        nonlocal out
        deadline = time.monotonic() + timeout
        while marker not in out and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    return

    read_until(b"# ")
    os.write(fd, b"stty size; echo hi-$((40+2))\r")
    read_until(b"hi-42\r\n")
    os.write(fd, b"exit 5\r")
    read_until(b"never", timeout=2)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert b"30 100\r\n" in out and b"hi-42\r\n" in out
    assert os.waitstatus_to_exitcode(status) == 5


def _root_mount_options(proc_mounts: str) -> list[str]:
    root = next(line for line in proc_mounts.splitlines() if line.split()[1] == "/")
    return root.split()[3].split(",")


def test_rm_containers_get_a_volatile_overlay_others_do_not(kobako) -> None:  # type: ignore[no-untyped-def]
    if (kobako.root / "snapshotter").read_text().strip() != "overlay":
        pytest.skip("the native snapshotter mounts no overlay")
    volatile = _root_mount_options(kobako("run", "--rm", "busybox", "cat", "/proc/mounts").stdout)
    # "volatile", or "fsync=volatile" on newer kernels
    assert any("volatile" in o for o in volatile), volatile
    kept = _root_mount_options(kobako("run", "--name", "kept", "busybox", "cat", "/proc/mounts").stdout)
    assert not any("volatile" in o for o in kept), kept
    kobako("rm", "kept")


def test_create_rm_then_start_attached(kobako) -> None:  # type: ignore[no-untyped-def]
    """Created with --rm, its rootfs is mounted again (volatile) at start; it is gone once it has run."""
    kobako("create", "--rm", "--name", "once", "busybox", "sh", "-c", "echo ran; exit 3")
    proc = kobako("start", "-a", "once", check=False)
    assert proc.returncode == 3 and proc.stdout == "ran\n"
    from .conftest import wait_for

    assert wait_for(lambda: kobako.ids() == [])
    assert kobako("ps", "-aq").stdout == ""

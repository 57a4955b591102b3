"""capabilities.apply on the real kernel, in the order the container init uses it."""

from __future__ import annotations

import os

import pytest

from kobako.runtime.security import capabilities

pytestmark = pytest.mark.root

UID = GID = 4321  # not root, not anyone on the host

# Docker's default set.
DOCKER_DEFAULT = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]  # fmt: skip


def mask(*names: str) -> str:
    return f"{capabilities.parse(list(names)):016x}"


def become_user_and_apply(caps: dict) -> None:
    capabilities.set_keep_caps(True)
    os.setgroups([])
    os.setresgid(GID, GID, GID)
    os.setresuid(UID, UID, UID)
    capabilities.apply(caps)
    capabilities.set_keep_caps(False)


def test_apply_after_setuid_sets_every_set(child) -> None:
    caps = {
        "bounding": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "permitted": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }

    def body() -> dict[str, str]:
        become_user_and_apply(caps)
        return child.own_status()

    status = child.call(body).ok()
    assert isinstance(status, dict)
    assert status["Uid"].split()[0] == str(UID)
    assert status["CapBnd"] == mask("CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_KILL")
    assert status["CapEff"] == mask("CAP_NET_BIND_SERVICE", "CAP_CHOWN")
    assert status["CapPrm"] == mask("CAP_NET_BIND_SERVICE", "CAP_CHOWN")
    assert status["CapInh"] == mask("CAP_NET_BIND_SERVICE")
    assert status["CapAmb"] == mask("CAP_NET_BIND_SERVICE")


def test_ambient_caps_survive_execve_as_non_root(child) -> None:
    caps = {
        "bounding": DOCKER_DEFAULT,
        "effective": DOCKER_DEFAULT,
        "permitted": DOCKER_DEFAULT,
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "ambient": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
    }
    result = child.exec(lambda: become_user_and_apply(caps), [child.BUSYBOX, "cat", "/proc/self/status"])
    assert result.exit_code == 0, result.output
    status = child.status_fields(result.output.decode())
    # A non-root process without file capabilities keeps exactly its ambient set across execve.
    assert status["CapAmb"] == mask("CAP_NET_BIND_SERVICE", "CAP_KILL")
    assert status["CapEff"] == mask("CAP_NET_BIND_SERVICE", "CAP_KILL")
    assert status["CapPrm"] == mask("CAP_NET_BIND_SERVICE", "CAP_KILL")
    assert status["CapBnd"] == mask(*DOCKER_DEFAULT)


def test_non_root_without_ambient_has_no_capabilities_after_execve(child) -> None:
    caps = {key: DOCKER_DEFAULT for key in ("bounding", "effective", "permitted")}
    result = child.exec(lambda: become_user_and_apply(caps), [child.BUSYBOX, "cat", "/proc/self/status"])
    assert result.exit_code == 0, result.output
    status = child.status_fields(result.output.decode())
    assert status["CapEff"] == status["CapPrm"] == status["CapAmb"] == "0000000000000000"
    assert status["CapBnd"] == mask(*DOCKER_DEFAULT)


def test_root_container_gets_its_bounding_set_after_execve(child) -> None:
    caps = {key: DOCKER_DEFAULT for key in ("bounding", "effective", "permitted")}
    result = child.exec(lambda: capabilities.apply(caps), [child.BUSYBOX, "cat", "/proc/self/status"])
    assert result.exit_code == 0, result.output
    status = child.status_fields(result.output.decode())
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == mask(*DOCKER_DEFAULT)
    assert status["CapInh"] == status["CapAmb"] == "0000000000000000"


def test_dropped_capability_is_really_gone(child) -> None:
    # Without CAP_CHOWN, chown to another user fails even for uid 0.
    caps = {key: ["CAP_SETUID"] for key in ("bounding", "effective", "permitted")}

    def body() -> int:
        capabilities.apply(caps)
        try:
            os.chown("/proc/self/status", 1, 1)
        except OSError as exc:
            return exc.errno or 0
        return 0

    assert child.call(body).ok() == 1  # EPERM


def test_capabilities_that_cannot_be_granted_are_skipped_with_a_warning(child) -> None:
    # Effective wants CAP_KILL, which is not permitted: skipped, the rest applies.
    caps = {
        "bounding": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "ambient": ["CAP_CHOWN"],  # not inheritable
    }

    def body() -> tuple[list[str], dict[str, str]]:
        import os
        import tempfile

        os.environ["KOBAKO_DEBUG"] = "1"  # skipped capabilities are reported on stderr when debugging
        with tempfile.TemporaryFile() as err:
            saved = os.dup(2)
            os.dup2(err.fileno(), 2)
            try:
                capabilities.apply(caps)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            err.seek(0)
            messages = err.read().decode().splitlines()
        return messages, child.own_status()

    messages, status = child.call(body).ok()  # type: ignore[misc]
    assert status["CapEff"] == mask("CAP_CHOWN")
    assert status["CapAmb"] == "0000000000000000"
    assert any("effective" in m and "CAP_KILL" in m for m in messages)
    assert any("ambient" in m and "CAP_CHOWN" in m for m in messages)


def test_drop_bounding_without_setpcap_is_refused(child) -> None:
    from kobako.errors import PermissionDenied

    def body() -> str:
        capabilities.apply({key: ["CAP_CHOWN", "CAP_KILL"] for key in ("bounding", "effective", "permitted")})
        try:
            capabilities.drop_bounding(capabilities.parse(["CAP_CHOWN"]))
        except PermissionDenied as exc:
            return str(exc)
        return "dropped"

    assert "CAP_KILL" in str(child.call(body).ok())


def test_drop_bounding_of_already_dropped_caps_needs_no_privilege(child) -> None:
    def body() -> str:
        keep = ["CAP_CHOWN", "CAP_KILL"]
        capabilities.apply({key: keep for key in ("bounding", "effective", "permitted")})
        capabilities.drop_bounding(capabilities.parse(keep))  # nothing left to drop: no EPERM
        return child.own_status()["CapBnd"]

    assert child.call(body).ok() == mask("CAP_CHOWN", "CAP_KILL")

"""capabilities: names, parsing, and the order apply() talks to the kernel in (fake kernel)."""

from __future__ import annotations

import pytest

from kobako.errors import InvalidArgument, PermissionDenied
from kobako.runtime.security import capabilities


def bit(*names: str) -> int:
    mask = 0
    for name in names:
        mask |= 1 << capabilities.CAPABILITIES[name]
    return mask


def test_table_covers_every_capability_up_to_checkpoint_restore() -> None:
    numbers = sorted(capabilities.CAPABILITIES.values())
    assert numbers == list(range(41))
    assert capabilities.CAPABILITIES["CAP_CHOWN"] == 0
    assert capabilities.CAPABILITIES["CAP_SYS_ADMIN"] == 21
    assert capabilities.CAPABILITIES["CAP_CHECKPOINT_RESTORE"] == 40


def test_last_cap_matches_proc() -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert capabilities.last_cap() == int(f.read())


def test_last_cap_probes_the_bounding_set_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        real = int(f.read())
    monkeypatch.setattr(capabilities, "_CAP_LAST_CAP", "/nonexistent/cap_last_cap")
    monkeypatch.setattr(capabilities, "_last_cap", None)
    assert capabilities.last_cap() == real


def test_parse_builds_the_mask(fake_kernel: object) -> None:
    assert capabilities.parse(["CAP_CHOWN", "CAP_KILL", "CAP_CHOWN"]) == bit("CAP_CHOWN", "CAP_KILL")
    assert capabilities.parse([]) == 0
    assert capabilities.parse(None) == 0


@pytest.mark.parametrize("bad", ["CAP_FOO", "chown", "CHOWN", "", 5, None])
def test_parse_rejects_unknown_names(fake_kernel: object, bad: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        capabilities.parse(["CAP_CHOWN", bad], "process.capabilities.bounding")  # type: ignore[list-item]
    assert "process.capabilities.bounding" in str(info.value)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", ["CAP_CHOWN", 3, {"CAP_CHOWN": 1}])
def test_parse_rejects_non_lists(fake_kernel: object, bad: object) -> None:
    with pytest.raises(InvalidArgument, match="list of capability names"):
        capabilities.parse(bad)  # type: ignore[arg-type]


def test_parse_ignores_capabilities_the_kernel_does_not_know(monkeypatch: pytest.MonkeyPatch, capfd) -> None:
    monkeypatch.setattr(capabilities, "_last_cap", 37)  # a kernel before CAP_PERFMON
    monkeypatch.setenv("KOBAKO_DEBUG", "1")  # skipped capabilities are reported only when debugging
    assert capabilities.parse(["CAP_CHOWN", "CAP_BPF"]) == bit("CAP_CHOWN")
    assert "CAP_BPF" in capfd.readouterr().err
    monkeypatch.delenv("KOBAKO_DEBUG")
    assert capabilities.parse(["CAP_CHOWN", "CAP_BPF"]) == bit("CAP_CHOWN")
    assert capfd.readouterr().err == ""


def test_names_is_the_inverse_of_parse(fake_kernel: object) -> None:
    names = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"]
    assert capabilities.names(capabilities.parse(names)) == names
    assert capabilities.names(1 << 50) == ["CAP_50"]


def test_set_keep_caps(fake_kernel) -> None:
    capabilities.set_keep_caps(True)
    assert fake_kernel.keepcaps == 1
    capabilities.set_keep_caps(False)
    assert fake_kernel.keepcaps == 0


def test_drop_bounding_drops_all_but_the_kept(fake_kernel) -> None:
    keep = bit("CAP_CHOWN", "CAP_KILL")
    capabilities.drop_bounding(keep)
    assert fake_kernel.bounding == keep
    assert fake_kernel.names().count("drop") == 39


def test_drop_bounding_without_setpcap(fake_kernel) -> None:
    fake_kernel.effective = 0
    fake_kernel.bounding = bit("CAP_CHOWN", "CAP_KILL")
    capabilities.drop_bounding(bit("CAP_CHOWN", "CAP_KILL"))  # nothing left to drop: fine
    with pytest.raises(PermissionDenied, match=r"CAP_KILL.*CAP_SETPCAP"):
        capabilities.drop_bounding(bit("CAP_CHOWN"))


def test_apply_after_setuid_order(fake_kernel) -> None:
    # After setuid() with keepcaps: permitted kept, effective emptied by the kernel.
    fake_kernel.effective = 0
    caps = {
        "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP"],
        "effective": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    capabilities.apply(caps)

    calls = fake_kernel.names()
    raise_eff = calls.index("capset")
    first_drop = calls.index("drop")
    final = len(calls) - 1 - calls[::-1].index("capset")
    clear = calls.index("ambient")
    assert calls[0] == "capget"
    assert raise_eff < first_drop < final < clear  # effective up, bounding down, sets, then ambient
    assert fake_kernel.calls[raise_eff] == ("capset", (1 << 41) - 1, (1 << 41) - 1, 0)
    assert fake_kernel.bounding == bit("CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP")
    assert fake_kernel.effective == bit("CAP_CHOWN", "CAP_NET_BIND_SERVICE")
    assert fake_kernel.permitted == bit("CAP_CHOWN", "CAP_NET_BIND_SERVICE")
    assert fake_kernel.inheritable == bit("CAP_NET_BIND_SERVICE")
    assert fake_kernel.ambient == bit("CAP_NET_BIND_SERVICE")


def test_apply_skips_the_extra_capset_when_effective_is_full(fake_kernel) -> None:
    capabilities.apply({"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]})
    assert fake_kernel.names().count("capset") == 1
    assert fake_kernel.ambient == 0


def test_apply_warns_and_skips_what_cannot_be_granted(fake_kernel, monkeypatch, capfd) -> None:
    monkeypatch.setenv("KOBAKO_DEBUG", "1")
    fake_kernel.permitted = fake_kernel.effective = bit("CAP_CHOWN", "CAP_KILL", "CAP_SETPCAP")
    caps = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"],
        "permitted": ["CAP_CHOWN", "CAP_SYS_ADMIN"],  # CAP_SYS_ADMIN is not held
        "effective": ["CAP_CHOWN", "CAP_KILL"],  # CAP_KILL is not permitted
        "ambient": ["CAP_CHOWN"],  # not inheritable
    }
    capabilities.apply(caps)
    messages = capfd.readouterr().err
    assert "permitted: cannot grant CAP_SYS_ADMIN" in messages
    assert "effective: cannot grant CAP_KILL" in messages
    assert "ambient: cannot grant CAP_CHOWN" in messages
    assert fake_kernel.permitted == fake_kernel.effective == bit("CAP_CHOWN")
    assert fake_kernel.ambient == 0


@pytest.mark.parametrize(
    ("caps", "field"),
    [
        (["CAP_CHOWN"], "must be an object"),
        ({"bounding": ["CAP_NOPE"]}, "process.capabilities.bounding: unknown capability 'CAP_NOPE'"),
        ({"ambient": "CAP_CHOWN"}, "process.capabilities.ambient: must be a list"),
        ({"efective": ["CAP_CHOWN"]}, "unknown set 'efective'"),
    ],
)
def test_apply_rejects_malformed_input_before_touching_the_kernel(
    fake_kernel, caps: object, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        capabilities.apply(caps)  # type: ignore[arg-type]
    assert field in str(info.value)
    assert fake_kernel.calls == []

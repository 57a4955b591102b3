"""``--cap-add``/``--cap-drop``/``--security-opt`` of ``kobako run``, checked and normalised.

Capability names are accepted with or without ``CAP_`` in any case and stored as ``CAP_X`` (or ``ALL``).
A seccomp profile file is read now, as docker's client does, so the options carry the profile itself.
SELinux and AppArmor options are accepted and ignored: kobako hosts run without either.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.engine.runopts import RunOptions

MAX_PROFILE = 1 << 20


def _capability(name: str, flag: str) -> str:
    from kobako.runtime.security.capabilities import CAPABILITIES

    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAPABILITIES:
        raise InvalidArgument(f"invalid {flag}: unknown capability: {name!r}")
    return full


def parse_security(o: RunOptions, flags: dict) -> None:
    """--cap-add, --cap-drop and --security-opt into ``o``."""
    o.cap_add = [_capability(c, "--cap-add") for c in flags["cap_add"]]
    o.cap_drop = [_capability(c, "--cap-drop") for c in flags["cap_drop"]]
    o.security_opts = list(flags["security_opt"])
    for opt in o.security_opts:
        key, sep, value = opt.partition("=")
        if not sep and opt != "no-new-privileges":
            key, sep, value = opt.partition(":")  # the older "seccomp:unconfined" spelling
            if not sep:
                raise InvalidArgument(f"invalid --security-opt: {opt!r}")
        if key == "no-new-privileges":
            if value.lower() not in ("", "true", "false", "1", "0"):
                raise InvalidArgument(
                    f"invalid --security-opt {opt!r}: no-new-privileges takes true or false"
                )
            o.no_new_privileges = value.lower() in ("", "true", "1")
        elif key == "seccomp":
            o.seccomp_unconfined, o.seccomp_profile = value == "unconfined", None
            if value not in ("unconfined", "builtin", "default"):
                o.seccomp_profile = _read_seccomp_file(value)
        elif key == "systempaths" and value == "unconfined":
            o.systempaths_unconfined = True
        elif key in ("label", "apparmor"):
            continue  # no SELinux or AppArmor here: accepted, as on a host without them
        else:
            raise InvalidArgument(f"invalid --security-opt: {opt!r}")


def _read_seccomp_file(path: str) -> dict[str, object]:
    from kobako.oci import jsoncodec

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PROFILE + 1)
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile ({path}) failed: {exc.strerror or exc}") from exc
    if len(raw) > MAX_PROFILE:
        raise InvalidArgument(f"seccomp profile {path} is larger than 1 MiB")
    profile = jsoncodec.loads(raw, what=f"seccomp profile {path}")
    if not isinstance(profile, dict):
        raise InvalidArgument(f"seccomp profile {path}: must be a JSON object")
    return profile

"""Which endpoints serve a registry, and how to reach them: the registries config, insecure hosts, mirrors.

The config is TOML at ``<state root>/registries.toml`` (``$KOBAKO_REGISTRIES_CONF`` overrides the path)::

    [registries."docker.io"]
    mirrors = ["127.0.0.1:5001"]          # tried in order before the registry itself, for pulls only

    [registries."myregistry.lan:5000"]
    insecure = true                       # TLS without verification, then plain HTTP (as Docker does)

    [registries."127.0.0.1:5443"]
    insecure = false                      # loopback hosts are insecure by default; this makes one strict
    ca = "/etc/kobako/certs/ca.pem"       # CA bundle to verify this host's certificate with

Like Docker, loopback hosts (``localhost``, ``127.0.0.0/8``, ``::1``) are insecure unless configured
otherwise: HTTPS is tried first without verifying the certificate and plain HTTP used when the host does not
speak TLS. ``--tls-verify=false`` makes any host insecure; ``--tls-verify=true`` makes it strict.
"""

from __future__ import annotations

import ipaddress
import os

from kobako import paths
from kobako.errors import InvalidArgument

CONFIG_NAME = "registries.toml"
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


class Endpoint:
    """One place to send requests for a registry: ``host`` (host[:port]), ``insecure``, ``ca`` (path or None),
    ``mirror`` (True when standing in for another registry)."""

    __slots__ = ("ca", "host", "insecure", "mirror")

    def __init__(
        self, host: str, insecure: bool = False, ca: str | None = None, mirror: bool = False
    ) -> None:
        self.host = host
        self.insecure = insecure
        self.ca = ca
        self.mirror = mirror

    def __repr__(self) -> str:
        return f"Endpoint({self.host!r}, insecure={self.insecure}, mirror={self.mirror})"


def config_path() -> str:
    return os.environ.get("KOBAKO_REGISTRIES_CONF") or os.path.join(paths.state_root(), CONFIG_NAME)


def load_config(path: str | None = None) -> dict[str, dict]:
    """host → {"mirrors": [...], "insecure": bool | None, "ca": str | None}; {} when there is no file."""
    import tomllib

    path = path or config_path()
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(f"{path}: {exc}") from exc
    table = doc.get("registries", {})
    if not isinstance(table, dict):
        raise InvalidArgument(f"{path}: registries: want a table of hosts")
    out: dict[str, dict] = {}
    for host, entry in table.items():
        what = f"{path}: registries.{host!r}"
        if not isinstance(entry, dict):
            raise InvalidArgument(f"{what}: want a table")
        unknown = set(entry) - {"mirrors", "insecure", "ca"}
        if unknown:
            raise InvalidArgument(f"{what}: unknown keys {sorted(unknown)}")
        mirrors = entry.get("mirrors", [])
        if not isinstance(mirrors, list) or not all(isinstance(m, str) and m for m in mirrors):
            raise InvalidArgument(f"{what}.mirrors: want a list of hosts")
        insecure = entry.get("insecure")
        if insecure is not None and not isinstance(insecure, bool):
            raise InvalidArgument(f"{what}.insecure: want true or false")
        ca = entry.get("ca")
        if ca is not None and not isinstance(ca, str):
            raise InvalidArgument(f"{what}.ca: want a file path")
        out[normalize_host(host)] = {"mirrors": [normalize_host(m) for m in mirrors], "insecure": insecure,
                                     "ca": ca}  # fmt: skip
    return out


def normalize_host(host: str) -> str:
    """``https://Host:5000/`` → ``host:5000``; Docker Hub's aliases → ``docker.io``."""
    h = host.strip()
    for prefix in ("https://", "http://"):
        if h.lower().startswith(prefix):
            h = h[len(prefix) :]
    h = h.split("/", 1)[0].lower()
    if h in ("index.docker.io", DOCKER_HUB_API, "registry.hub.docker.com"):
        return DOCKER_HUB
    return h


def api_host(domain: str) -> str:
    """The host that serves a registry's API (Docker Hub's is not docker.io)."""
    return DOCKER_HUB_API if domain == DOCKER_HUB else domain


def hostname(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    name = hostname(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def endpoint_for(
    host: str, config: dict[str, dict], tls_verify: bool | None = None, mirror: bool = False
) -> Endpoint:
    entry = config.get(normalize_host(host), {})
    if tls_verify is not None:
        insecure = not tls_verify
    elif entry.get("insecure") is not None:
        insecure = bool(entry["insecure"])
    else:
        insecure = is_loopback(host)
    return Endpoint(api_host(normalize_host(host)), insecure, entry.get("ca"), mirror)


def endpoints(domain: str, config: dict[str, dict], tls_verify: bool | None = None, *,
              pull: bool = True) -> list[Endpoint]:  # fmt: skip
    """Mirrors first (pulls only), then the registry itself. ``tls_verify`` (the command line's) applies to the
    registry named, not to its mirrors, which follow their own config."""
    out = []
    if pull:
        for m in config.get(normalize_host(domain), {}).get("mirrors", []):
            out.append(endpoint_for(m, config, None, mirror=True))
    out.append(endpoint_for(domain, config, tls_verify))
    return out

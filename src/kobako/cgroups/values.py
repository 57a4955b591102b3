"""Validation of OCI linux.resources values shared by both drivers; messages name the offending field."""

from __future__ import annotations

from kobako.errors import InvalidArgument


def section(resources: dict, key: str) -> dict:
    value = resources.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"linux.resources.{key} must be an object, got {type(value).__name__}")
    return value


def get_int(sec: dict, key: str, where: str) -> int | None:
    value = sec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"linux.resources.{where}.{key} must be an integer, got {value!r}")
    return value


def get_limit(sec: dict, key: str, where: str) -> int | None:
    """An int64 limit: None/0 mean unset (as runc treats them), -1 means unlimited, other negatives are wrong."""
    value = get_int(sec, key, where)
    if not value:
        return None
    if value < -1:
        raise InvalidArgument(
            f"linux.resources.{where}.{key} is {value}: only -1 (unlimited) may be negative"
        )
    return value


def get_uint(sec: dict, key: str, where: str) -> int | None:
    """A uint64 field: None/0 mean unset."""
    value = get_int(sec, key, where)
    if not value:
        return None
    if value < 0:
        raise InvalidArgument(f"linux.resources.{where}.{key} is {value}: must not be negative")
    return value


def get_str(sec: dict, key: str, where: str) -> str | None:
    value = sec.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "\n" in value:
        raise InvalidArgument(f"linux.resources.{where}.{key} must be a one-line string, got {value!r}")
    return value


def device_entries(sec: dict, key: str, value_key: str) -> list[tuple[int, int, int]]:
    """blockIO per-device lists → (major, minor, value) with validation."""
    entries = sec.get(key) or []
    if not isinstance(entries, list):
        raise InvalidArgument(f"linux.resources.blockIO.{key} must be a list")
    out: list[tuple[int, int, int]] = []
    for i, entry in enumerate(entries):
        where = f"blockIO.{key}[{i}]"
        if not isinstance(entry, dict):
            raise InvalidArgument(f"linux.resources.{where} must be an object")
        major, minor = get_int(entry, "major", where), get_int(entry, "minor", where)
        if major is None or minor is None or major < 0 or minor < 0:
            raise InvalidArgument(f"linux.resources.{where} needs non-negative major and minor")
        value = get_int(entry, value_key, where)
        if value is not None and value < 0:
            raise InvalidArgument(f"linux.resources.{where}.{value_key} is {value}: must not be negative")
        out.append((major, minor, -1 if value is None else value))
    return out


def hugepage_limits(resources: dict) -> list[tuple[str, int]]:
    entries = resources.get("hugepageLimits") or []
    if not isinstance(entries, list):
        raise InvalidArgument("linux.resources.hugepageLimits must be a list")
    out: list[tuple[str, int]] = []
    for i, entry in enumerate(entries):
        where = f"hugepageLimits[{i}]"
        size = get_str(entry, "pageSize", where) if isinstance(entry, dict) else None
        if not size or not size.endswith("B") or not size[:-2].isdigit() or size[-2] not in "KMGT":
            raise InvalidArgument(f"linux.resources.{where}.pageSize must look like 2MB or 1GB, got {size!r}")
        limit = get_int(entry, "limit", where)
        if limit is None or limit < 0:
            raise InvalidArgument(f"linux.resources.{where}.limit must be a non-negative integer")
        out.append((size, limit))
    return out


def reject_unsupported(resources: dict) -> None:
    """Sections kobako cannot honour: the spec asks for an error rather than silently ignoring them."""
    net = section(resources, "network")
    if net.get("classID") or net.get("priorities"):
        raise InvalidArgument("linux.resources.network (net_cls/net_prio) is not supported by kobako")
    if resources.get("rdma"):
        raise InvalidArgument("linux.resources.rdma is not supported by kobako")


def require_dict(resources: object) -> dict:
    if resources is None:
        return {}
    if not isinstance(resources, dict):
        raise InvalidArgument(f"linux.resources must be an object, got {type(resources).__name__}")
    return resources

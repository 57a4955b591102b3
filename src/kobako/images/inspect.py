"""What ``image inspect`` and ``history`` show, as data (the CLI formats it), shaped like Docker's output."""

from __future__ import annotations

import time

from kobako.oci.reference import parse_normalized

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from kobako.images.service import Image


def parse_time(value: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (``2024-01-02T03:04:05.123456789Z`` or ``+01:00``)."""
    if not isinstance(value, str) or len(value) < 20 or value[10] not in "Tt ":
        return None
    import calendar

    try:
        base = calendar.timegm(
            time.strptime(value[:19].replace("t", "T").replace(" ", "T"), "%Y-%m-%dT%H:%M:%S")
        )
    except ValueError:
        return None
    rest = value[19:]
    frac = 0.0
    if rest.startswith("."):
        digits = ""
        rest = rest[1:]
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        frac = float("0." + digits) if digits else 0.0
    if rest in ("Z", "z"):
        return base + frac
    if len(rest) == 6 and rest[0] in "+-" and rest[3] == ":" and rest[1:3].isdigit() and rest[4:].isdigit():
        offset = int(rest[1:3]) * 3600 + int(rest[4:]) * 60
        return base + frac - (offset if rest[0] == "+" else -offset)
    return None


def created(image: Image) -> float:
    """When the image was built (its config's ``created``), else when kobako recorded it."""
    t = parse_time(image.config.get("created"))
    return t if t is not None else image.created


def repo_tags(image: Image) -> list[str]:
    return [parse_normalized(n).familiar() for n in image.names]


def repo_digests(image: Image) -> list[str]:
    out = []
    for n in image.names:
        repo = parse_normalized(n).familiar_name() + "@" + image.manifest_digest
        if repo not in out:
            out.append(repo)
    return out


def inspect(image: Image, snapshotter_name: str = "") -> dict:
    cfg = image.config
    history = cfg.get("history") or []
    out = {
        "Id": image.id,
        "RepoTags": repo_tags(image),
        "RepoDigests": repo_digests(image),
        "Parent": "",
        "Comment": (history[-1].get("comment") or "") if history else "",
        "Created": cfg.get("created") or "",
        "DockerVersion": cfg.get("docker_version") or "",
        "Author": cfg.get("author") or "",
        "Config": cfg.get("config") or {},
        "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""),
        "Size": image.size,
        "GraphDriver": {"Name": snapshotter_name, "Data": {"TopSnapshot": image.top_snapshot}},
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": ""},
    }
    if cfg.get("variant"):
        out["Variant"] = cfg["variant"]
    return out


def history(image: Image) -> list[dict]:
    """Rows newest first: ``id`` ("<missing>" below the top), ``created`` (epoch or None), ``created_by``,
    ``size`` (the layer's bytes; 0 for an empty layer), ``comment``."""
    entries = image.config.get("history") or []
    layers = list(image.layers)
    rows = []
    if not entries:
        entries = [{} for _ in layers]
    for entry in entries:
        empty = bool(entry.get("empty_layer"))
        size = 0
        if not empty and layers:
            size = layers.pop(0)["size"]
        rows.append({"id": "<missing>", "created": parse_time(entry.get("created")),
                     "created_by": entry.get("created_by") or "", "size": size,
                     "comment": entry.get("comment") or ""})  # fmt: skip
    rows.reverse()
    if rows:
        rows[0]["id"] = image.id
    return rows


def list_rows(images: list[Image], no_trunc: bool = False) -> list[dict]:
    """One row per (image, name) for ``kobako images``, with docker's --format field names; ``Created`` is epoch
    seconds and ``Size`` bytes (the CLI makes them human)."""
    rows = []
    for image in images:
        t = created(image)
        base = {
            "ID": image.id if no_trunc else image.id.partition(":")[2][:12],
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(t)),
            "Created": t,
            "Size": image.size,
            "Containers": "N/A",
            "SharedSize": "N/A",
            "UniqueSize": "N/A",
        }
        for name in image.names or [""]:
            row = dict(base)
            if name:
                ref = parse_normalized(name)
                row["Repository"], row["Tag"] = ref.familiar_name(), ref.tag or "<none>"
                row["Digest"] = image.manifest_digest
            else:
                row["Repository"], row["Tag"], row["Digest"] = "<none>", "<none>", "<none>"
            rows.append(row)
    return rows

"""The distribution spec's grammar for what arrives in URLs: repository names, tags, digests, upload IDs.

Everything here is checked before it becomes part of a file path, which is what keeps ``..``, empty or
absolute components, NUL and other path tricks out of the store: a name component must match
``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*`` (so it never starts with ``.`` or ``_``, the prefix of the store's own
directories), a tag ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``.
"""

from __future__ import annotations

import re

from kobako.errors import InvalidArgument
from kobako.oci.digest import Digest
from kobako.registry.server.errors import RegistryError

NAME_MAX = 255
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def valid_name(name: str) -> bool:
    return (
        0 < len(name) <= NAME_MAX
        and name.isascii()
        and all(_COMPONENT.fullmatch(part) for part in name.split("/"))
    )


def check_name(name: str) -> str:
    if not valid_name(name):
        raise RegistryError(
            "NAME_INVALID", f"invalid repository name {name[:300]!r}", detail={"name": name[:300]}
        )
    return name


def is_tag(ref: str) -> bool:
    return bool(_TAG.fullmatch(ref))


def check_tag(tag: str) -> str:
    if not is_tag(tag):
        raise RegistryError("MANIFEST_INVALID", f"invalid tag {tag[:200]!r}")
    return tag


def parse_digest(value: str | None, code: str = "DIGEST_INVALID") -> Digest:
    if not value:
        raise RegistryError(code, "a digest is required")
    try:
        return Digest.parse(value)
    except InvalidArgument as exc:
        raise RegistryError(code, str(exc)) from None


def check_upload_id(value: str) -> str:
    if not _UPLOAD_ID.fullmatch(value):
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"unknown upload {value[:100]!r}")
    return value

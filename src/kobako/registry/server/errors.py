"""The distribution spec's error codes, each with the HTTP status kobako's registry answers it with.

A handler raises :class:`RegistryError`; the app turns it into ``{"errors": [{"code", "message", "detail"}]}``.
kobako errors met inside a handler are translated at this boundary (this is an api layer: the only place
where kobako's error tree meets HTTP statuses).
"""

from __future__ import annotations

from kobako.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    KobakoError,
    NotFound,
    PermissionDenied,
    Unavailable,
)

#: code -> (HTTP status, the spec's description)
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "UNKNOWN": (500, "unknown error"),
}


class RegistryError(Exception):
    """One spec error; ``status`` defaults to the code's, ``headers`` are added to the response."""

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status: int | None = None,
        detail: object = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        default_status, description = CODES[code]
        super().__init__(message or description)
        self.code = code
        self.message = message or description
        self.status = status or default_status
        self.detail = detail
        self.headers = headers or []

    def body(self) -> dict:
        err: dict[str, object] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return {"errors": [err]}


def translate(exc: KobakoError, code_for_missing: str, code_for_invalid: str) -> RegistryError:
    """A kobako error from the storage layer as the spec error the endpoint documents."""
    if isinstance(exc, NotFound):
        return RegistryError(code_for_missing, str(exc))
    if isinstance(exc, InvalidArgument):
        return RegistryError(code_for_invalid, str(exc))
    if isinstance(exc, PermissionDenied):
        return RegistryError("DENIED", str(exc))
    if isinstance(exc, (Conflict, AlreadyExists, Unavailable)):
        return RegistryError("UNKNOWN", str(exc), status=409 if not isinstance(exc, Unavailable) else 503)
    return RegistryError("UNKNOWN", str(exc))

"""KobakoError → Docker's status codes and ``{"message": ...}`` bodies (the only place HTTP codes are chosen).

    NotFound 404 · AlreadyExists, Conflict 409 · InvalidArgument 400 · PermissionDenied 403 ·
    Unavailable 503 · FailedPrecondition, Internal and anything unexpected 500

Messages of unexpected exceptions never carry a traceback to the client: the client gets the exception's
class and text, the service's log gets the traceback.
"""

from __future__ import annotations

from kobako import errors

_STATUS: tuple[tuple[type[errors.KobakoError], int], ...] = (
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.Conflict, 409),
    (errors.InvalidArgument, 400),
    (errors.PermissionDenied, 403),
    (errors.Unavailable, 503),
    (errors.FailedPrecondition, 500),
    (errors.Internal, 500),
)


def status_of(exc: BaseException) -> int:
    from kobako.api.http import HTTPError

    if isinstance(exc, HTTPError):
        return exc.status
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def message_of(exc: BaseException) -> str:
    from kobako.api.http import HTTPError

    if isinstance(exc, (errors.KobakoError, HTTPError)):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def body_of(exc: BaseException) -> dict[str, str]:
    return {"message": message_of(exc)}

"""One error tree for all of kobako.

    KobakoError
    ├── NotFound              the thing named does not exist
    ├── AlreadyExists         a thing with that name/ID is already there
    ├── Conflict              the thing is in a state that forbids the request
    ├── InvalidArgument       input (CLI, config.json, tar, manifest, API body) is malformed or hostile
    ├── FailedPrecondition    the host or the environment lacks what is needed
    ├── PermissionDenied      the caller may not do this
    ├── Unavailable           a peer or service cannot be reached now
    └── Internal              a bug or an unexpected kernel/library failure

Foreign exceptions are translated at the boundary with ``raise X(...) from exc`` so ``__cause__`` is kept.
Cleanup failures are attached with :meth:`KobakoError.add_cleanup_error`, never swallowed.
HTTP status codes are mapped only in the api layers.
"""

from __future__ import annotations


class KobakoError(Exception):
    """Root of every error kobako raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.cleanup_errors: list[BaseException] = []

    def add_cleanup_error(self, exc: BaseException) -> None:
        self.cleanup_errors.append(exc)
        self.add_note(f"while cleaning up: {exc}")

    def __str__(self) -> str:
        return self.message


class NotFound(KobakoError):
    pass


class AlreadyExists(KobakoError):
    pass


class Conflict(KobakoError):
    pass


class InvalidArgument(KobakoError):
    pass


class FailedPrecondition(KobakoError):
    pass


class PermissionDenied(KobakoError):
    pass


class Unavailable(KobakoError):
    pass


class Internal(KobakoError):
    pass


def from_oserror(exc: OSError, what: str) -> KobakoError:
    """Translate an OSError met while doing ``what`` into the matching kobako error."""
    import errno

    cls: type[KobakoError] = Internal
    if exc.errno == errno.ENOENT:
        cls = NotFound
    elif exc.errno == errno.EEXIST:
        cls = AlreadyExists
    elif exc.errno in (errno.EPERM, errno.EACCES):
        cls = PermissionDenied
    elif exc.errno in (errno.EINVAL, errno.ENAMETOOLONG):
        cls = InvalidArgument
    elif exc.errno == errno.EBUSY:
        cls = Conflict
    err = cls(f"{what}: {exc.strerror or exc}")
    err.__cause__ = exc
    return err

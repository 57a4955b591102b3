"""Who may do what: htpasswd users (bcrypt hashes) over HTTP basic auth, optionally anonymous reads.

Without an htpasswd file everyone may do everything (a registry for loopback tests and private networks).
With one, every request needs a valid user, except reads (GET/HEAD) when anonymous read is on. A bcrypt check
costs tens of milliseconds by design, so verified credentials are remembered for a few minutes under a keyed
hash of the header (the password itself is never kept); the file is reread when it changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time

from kobako.errors import InvalidArgument, NotFound
from kobako.registry.server.errors import RegistryError

REALM = "kobako registry"
CACHE_SECONDS = 300.0
CACHE_MAX = 1024
READ_METHODS = frozenset(("GET", "HEAD"))


def load_htpasswd(path: str) -> dict[str, bytes]:
    """user → bcrypt hash. Only bcrypt (``$2a$``/``$2b$``/``$2y$``) entries are accepted, as in distribution."""
    try:
        with open(path, "rb") as f:
            lines = f.read(16 << 20).splitlines()
    except FileNotFoundError:
        raise NotFound(f"htpasswd file {path} not found") from None
    users: dict[str, bytes] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        user, sep, hashed = line.partition(b":")
        if not sep or not user or not hashed.startswith((b"$2a$", b"$2b$", b"$2y$")):
            raise InvalidArgument(f"{path}:{number}: want 'user:<bcrypt hash>' (htpasswd -B)")
        users[user.decode()] = hashed
    return users


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash for an htpasswd line (what ``htpasswd -B`` writes)."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


class Authenticator:
    def __init__(self, htpasswd: str | None = None, anonymous_read: bool = False) -> None:
        self.path = htpasswd
        self.anonymous_read = anonymous_read
        self._users: dict[str, bytes] = {}
        self._stamp: tuple[int, int] | None = None
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[str, float]] = {}
        if htpasswd:
            self._reload()

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def challenge(self) -> list[tuple[bytes, bytes]]:
        return [(b"www-authenticate", f'Basic realm="{REALM}"'.encode())]

    def check(self, method: str, authorization: str | None) -> str:
        """The user name ("" for anonymous) if the request may go on; RegistryError UNAUTHORIZED otherwise."""
        if not self.enabled:
            return ""
        if authorization:
            user = self._verify(authorization)
            if user is not None:
                return user
            raise RegistryError("UNAUTHORIZED", "invalid username or password", headers=self.challenge())
        if self.anonymous_read and method in READ_METHODS:
            return ""
        raise RegistryError("UNAUTHORIZED", "authentication required", headers=self.challenge())

    def quick(self, method: str, authorization: str | None) -> str | None:
        """:meth:`check` without bcrypt: the answer when it is known at once, None when a hash must be checked
        (the app then runs :meth:`check` in a thread so the event loop never waits on bcrypt)."""
        if not self.enabled or not authorization:
            return self.check(method, authorization)
        self._reload()
        return self._cached(authorization)

    def _cached(self, authorization: str) -> str | None:
        cached = self._cache.get(self._cache_key(authorization))
        if cached is not None and cached[1] > time.monotonic() and cached[0] in self._users:
            return cached[0]
        return None

    def _cache_key(self, authorization: str) -> bytes:
        return hmac.new(self._key, authorization.strip().encode(), hashlib.sha256).digest()

    def _verify(self, authorization: str) -> str | None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        self._reload()
        user = self._cached(authorization)
        if user is not None:
            return user
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        hashed = self._users.get(user)
        if not sep or hashed is None or not _bcrypt_ok(password, hashed):
            return None
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[self._cache_key(authorization)] = (user, time.monotonic() + CACHE_SECONDS)
        return user

    def _reload(self) -> None:
        if not self.path:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._users, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._users = load_htpasswd(self.path)
            self._stamp = stamp
            self._cache.clear()


def _bcrypt_ok(password: str, hashed: bytes) -> bool:
    import bcrypt

    if hashed.startswith(b"$2y$"):  # Apache's name for the same algorithm
        hashed = b"$2b$" + hashed[4:]
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:
        return False

"""Registry authentication: stored credentials, ``WWW-Authenticate`` challenges, basic auth and the bearer
token flow of Docker's token specification.

Credentials live in Docker's ``auth.json`` format (``{"auths": {"host": {"auth": base64("user:pass")}}}``),
mode 0600: written to ``$REGISTRY_AUTH_FILE`` or ``<state root>/auth.json``; read from ``$REGISTRY_AUTH_FILE``
or, when unset, ``<state root>/auth.json`` then ``~/.docker/config.json`` (Docker's file, read only).

Token flow: a request answered 401 with ``Bearer realm=R,service=S,scope=X`` makes the client ask
``GET R?service=S&scope=X`` (with basic credentials if it has some) for ``{"token"|"access_token", "expires_in",
"issued_at"}``, then retry. Tokens are cached per set of scopes until shortly before they expire, and the
challenge is remembered so later requests get their token before being sent.
"""

from __future__ import annotations

import base64
import os
import threading
import time

from kobako import paths
from kobako.errors import InvalidArgument, PermissionDenied
from kobako.oci import jsoncodec
from kobako.registry.client.hosts import normalize_host

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

AUTH_FILE = "auth.json"
DEFAULT_TOKEN_SECONDS = 60  # the token spec's default when the server does not say
TOKEN_MARGIN = 10.0

# -- credentials --------------------------------------------------------------------------------------------


def auth_file() -> str:
    """Where ``login`` writes."""
    return os.environ.get("REGISTRY_AUTH_FILE") or os.path.join(paths.state_root(), AUTH_FILE)


def _read_files() -> list[str]:
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return [os.environ["REGISTRY_AUTH_FILE"]]
    return [os.path.join(paths.state_root(), AUTH_FILE), os.path.expanduser("~/.docker/config.json")]


def _load(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            doc = jsoncodec.loads(f.read(4 << 20), path)
    except FileNotFoundError:
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("auths", {}), dict):
        raise InvalidArgument(f'{path}: want {{"auths": {{...}}}}')
    return doc


def _decode(entry: object, where: str) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return entry["username"], entry["password"]
    raw = entry.get("auth")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        user, sep, password = base64.b64decode(raw, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(f"{where}: auth is not base64 of user:password") from None
    return (user, password) if sep else None


def get_credentials(host: str) -> tuple[str, str] | None:
    """(user, password) stored for ``host`` (a registry domain such as ``localhost:5000``), or None."""
    want = normalize_host(host)
    for path in _read_files():
        for key, entry in _load(path).get("auths", {}).items():
            if normalize_host(key) == want:
                found = _decode(entry, f"{path}: auths[{key!r}]")
                if found is not None:
                    return found
    return None


def _write(path: str, doc: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # even under a permissive umask or over a leftover file
        os.write(fd, (jsoncodec.dumps(doc, indent=2) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def save_credentials(host: str, user: str, password: str) -> str:
    """Store credentials for ``host``; return the file written."""
    if ":" in user:
        raise InvalidArgument("user names cannot contain ':'")
    path = auth_file()
    doc = _load(path)
    auths = {k: v for k, v in doc.get("auths", {}).items() if normalize_host(k) != normalize_host(host)}
    auths[normalize_host(host)] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    doc["auths"] = auths
    _write(path, doc)
    return path


def remove_credentials(host: str) -> bool:
    """Forget ``host``'s credentials in the file ``login`` writes; False if there were none."""
    path = auth_file()
    doc = _load(path)
    auths = doc.get("auths", {})
    kept = {k: v for k, v in auths.items() if normalize_host(k) != normalize_host(host)}
    if len(kept) == len(auths):
        return False
    doc["auths"] = kept
    _write(path, doc)
    return True


# -- challenges -----------------------------------------------------------------------------------------------


def parse_challenges(header: str) -> list[tuple[str, dict[str, str]]]:
    """``Bearer realm="r",service="s", Basic realm="x"`` → [("bearer", {...}), ("basic", {...})]."""
    out: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(header)
    current: dict[str, str] | None = None
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        token = header[start:i]
        if not token:
            break
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and current is not None and not header[j:].startswith("=="):
            i = j + 1
            while i < n and header[i] in " \t":
                i += 1
            if i < n and header[i] == '"':
                i += 1
                value = []
                while i < n and header[i] != '"':
                    if header[i] == "\\" and i + 1 < n:
                        i += 1
                    value.append(header[i])
                    i += 1
                i += 1
                current[token.lower()] = "".join(value)
            else:
                start = i
                while i < n and header[i] not in " \t,":
                    i += 1
                current[token.lower()] = header[start:i]
        else:
            current = {}
            out.append((token.lower(), current))
            i = j
    return out


def pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def push_scope(repo: str) -> str:
    return f"repository:{repo}:pull,push"


class Authorizer:
    """Authorization for one registry host. ``send`` sends a request without auth (to the token realm)."""

    def __init__(self, host: str, credentials: tuple[str, str] | None,
                 send: Callable[[httpx.Request], httpx.Response]) -> None:  # fmt: skip
        self.host = host
        self.credentials = credentials
        self._send = send
        self.scheme = ""  # "basic" or "bearer" once the registry said which
        self.params: dict[str, str] = {}
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()

    def _basic(self) -> str:
        assert self.credentials is not None
        user, password = self.credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def apply(self, request: httpx.Request, scopes: list[str]) -> None:
        """Add an Authorization header when the registry's scheme is known."""
        if self.scheme == "basic" and self.credentials is not None:
            request.headers["authorization"] = self._basic()
        elif self.scheme == "bearer":
            request.headers["authorization"] = "Bearer " + self.token(scopes)

    def on_unauthorized(self, response: httpx.Response, scopes: list[str]) -> bool:
        """Learn from a 401; True when retrying with new authorization can help."""
        challenges = parse_challenges(response.headers.get("www-authenticate", ""))
        for scheme, params in challenges:
            if scheme == "bearer" and params.get("realm"):
                # a token was sent and refused (vs. a request sent before the scheme was known)
                had = self.scheme == "bearer" and (_sent_authorization(response) or "").startswith("Bearer ")
                self.scheme, self.params = "bearer", params
                extra = [s for s in params.get("scope", "").split(" ") if s]
                with self._lock:
                    self._tokens.pop(_key(scopes), None)
                wanted = sorted({*scopes, *extra})
                if extra and wanted != sorted(scopes):
                    scopes[:] = wanted  # the caller retries with what the registry asked for
                return not had or bool(extra)
        for scheme, _params in challenges:
            if scheme == "basic":
                if self.credentials is None:
                    raise PermissionDenied(f"{self.host}: authentication required (kobako login {self.host})")
                if _sent_authorization(response) == self._basic():
                    raise PermissionDenied(f"{self.host}: invalid username or password")
                self.scheme = "basic"  # (a parallel request may have learnt it first: retry all the same)
                return True
        return False

    def token(self, scopes: list[str]) -> str:
        key = _key(scopes)
        # one fetch at a time: parallel layer transfers asking at once share the first one's token
        with self._fetch_lock:
            with self._lock:
                cached = self._tokens.get(key)
                if cached is not None and cached[1] > time.monotonic():
                    return cached[0]
            token, lifetime = self._fetch_token(list(key))
            with self._lock:
                self._tokens[key] = (token, time.monotonic() + max(lifetime - TOKEN_MARGIN, 1.0))
            return token

    def _fetch_token(self, scopes: list[str]) -> tuple[str, float]:
        import httpx

        params = [("service", self.params["service"])] if self.params.get("service") else []
        params += [("scope", s) for s in scopes]
        request = httpx.Request("GET", httpx.URL(self.params["realm"], params=params))
        if self.credentials is not None:
            request.headers["authorization"] = self._basic()
        response = self._send(request)
        try:
            body = response.read()
        finally:
            response.close()
        if response.status_code in (401, 403):
            who = "invalid username or password" if self.credentials else "authentication required"
            raise PermissionDenied(f"{self.host}: token server refused: {who}")
        if response.status_code != 200:
            raise PermissionDenied(f"{self.host}: token server answered {response.status_code}")
        doc = jsoncodec.loads(body[: 1 << 20], "token response")
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise PermissionDenied(f"{self.host}: token server sent no token")
        lifetime = doc.get("expires_in")
        if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_SECONDS
        return token, float(lifetime)


def _sent_authorization(response: httpx.Response) -> str | None:
    try:
        return response.request.headers.get("authorization")
    except RuntimeError:  # a response made without a request
        return None


def _key(scopes: list[str]) -> tuple[str, ...]:
    return tuple(sorted(set(scopes)))

"""Docker-style image references: parse, validate, normalise (``busybox`` → ``docker.io/library/busybox:latest``).

Grammar (the distribution project's, checked by hand: ``re`` costs start-up time on the ``kobako run`` path)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] component ( "/" component )*          (at most 255 characters)
    domain     := host [ ":" port ]     host: DNS-ish labels joined by "." or an IPv6 address in [ ]
    component  := alnum ( separator alnum )*      alnum: [a-z0-9]+   separator: "." | "_" | "__" | "-"+
    tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}

The first path element is a domain when it contains "." or ":", is ``localhost``, or has upper-case letters;
otherwise the domain is ``docker.io``, and a single-component name on docker.io lives under ``library/``.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255
TAG_MAX = 128

_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_TAG_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_TAG_CHARS = _TAG_FIRST | frozenset(".-")
_HEX = frozenset("0123456789abcdef")


class Reference:
    """A parsed reference; ``tag`` and ``digest`` may be empty strings."""

    __slots__ = ("digest", "domain", "path", "tag")

    def __init__(self, domain: str, path: str, tag: str = "", digest: str = "") -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self) -> str:
        """The repository: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def __repr__(self) -> str:
        return f"Reference({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def familiar_name(self) -> str:
        """The repository as ``docker images`` shows it: ``busybox``, ``user/app``, ``localhost:5000/x``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
            path = path[len(OFFICIAL_PREFIX) :]
        return path

    def familiar(self) -> str:
        """The whole reference in its short form: ``busybox:latest``."""
        out = self.familiar_name()
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def with_tag(self, tag: str) -> Reference:
        _check_tag(tag, tag)
        return Reference(self.domain, self.path, tag, "")


def _fail(ref: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid reference format {ref!r}: {why}")


def _check_component(comp: str, ref: str) -> None:
    if not comp:
        raise _fail(ref, "empty path component")
    if comp.lower() != comp:
        raise _fail(ref, "repository name must be lowercase")
    if comp[0] not in _LOWER_ALNUM or comp[-1] not in _LOWER_ALNUM:
        raise _fail(ref, f"path component {comp!r} must start and end with a lowercase letter or digit")
    i, n = 0, len(comp)
    while i < n:
        if comp[i] in _LOWER_ALNUM:
            i += 1
            continue
        j = i
        while j < n and comp[j] not in _LOWER_ALNUM:
            j += 1
        sep = comp[i:j]
        if not (sep in (".", "_", "__") or set(sep) == {"-"}):
            raise _fail(ref, f"invalid separator {sep!r} in path component {comp!r}")
        i = j


def _check_domain(domain: str, ref: str) -> None:
    host, port = domain, ""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise _fail(ref, f"invalid IPv6 domain {domain!r}")
        inner, rest = host[1:end], host[end + 1 :]
        if not inner or not all(c in "0123456789abcdefABCDEF:." for c in inner):
            raise _fail(ref, f"invalid IPv6 domain {domain!r}")
        if rest and not rest.startswith(":"):
            raise _fail(ref, f"invalid domain {domain!r}")
        port = rest[1:] if rest else ""
        if rest and not port:
            raise _fail(ref, f"empty port in domain {domain!r}")
    else:
        host, sep, port = domain.partition(":")
        if sep and not port:
            raise _fail(ref, f"empty port in domain {domain!r}")
        for label in host.split("."):
            if not label or not _HOST_CHARS.issuperset(label) or label[0] == "-" or label[-1] == "-":
                raise _fail(ref, f"invalid domain {domain!r}")
    if port and not port.isdigit():
        raise _fail(ref, f"invalid port in domain {domain!r}")


def _check_tag(tag: str, ref: str) -> None:
    if not tag or len(tag) > TAG_MAX or tag[0] not in _TAG_FIRST or not _TAG_CHARS.issuperset(tag):
        raise _fail(ref, f"invalid tag {tag!r}")


def parse(ref: str) -> Reference:
    """Parse without normalising: the domain is empty unless the reference names one."""
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument("invalid reference format: empty reference")
    if not ref.isascii() or any(c.isspace() or ord(c) < 32 for c in ref):
        raise _fail(ref, "unexpected character")
    rest, at, digest = ref.partition("@")
    if at:
        from kobako.oci.digest import Digest  # lazily: it loads hashlib

        try:
            digest = str(Digest.parse(digest))
        except InvalidArgument as exc:
            raise _fail(ref, str(exc)) from None
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        _check_tag(tag, ref)
    if not rest:
        raise _fail(ref, "empty name")
    if len(rest) > NAME_MAX:
        raise _fail(ref, f"repository name longer than {NAME_MAX} characters")
    domain, path = "", rest
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, path = first, remainder
        _check_domain(domain, ref)
    for comp in path.split("/"):
        _check_component(comp, ref)
    return Reference(domain, path, tag, digest)


def parse_normalized(ref: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise: docker.io as the default domain, ``library/`` for official images, tag
    ``latest`` when neither tag nor digest is given (unless ``default_tag`` is false)."""
    r = parse(ref)
    if len(r.path) == 64 and _HEX.issuperset(r.path) and not r.domain:
        raise _fail(ref, "cannot specify 64-byte hexadecimal strings as a repository name")
    if r.domain in ("", DEFAULT_DOMAIN, LEGACY_DOMAIN):
        r.domain = DEFAULT_DOMAIN
        if "/" not in r.path:
            r.path = OFFICIAL_PREFIX + r.path
    if default_tag and not r.tag and not r.digest:
        r.tag = DEFAULT_TAG
    return r


def normalize(ref: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``."""
    return str(parse_normalized(ref))


def familiar(ref: str) -> str:
    """``docker.io/library/busybox:latest`` → ``busybox:latest`` (a normalised reference's short form)."""
    return parse_normalized(ref).familiar()

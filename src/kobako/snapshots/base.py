"""The Snapshotter interface: layered filesystem trees that are described by mounts, never mounted here.

A snapshot is ACTIVE (writable, made by :meth:`Snapshotter.prepare`), a VIEW (read-only, :meth:`view`) or
COMMITTED (immutable, a parent for others, made from an active one by :meth:`commit`). Keys are unique across
all kinds. Every snapshotter passes ``kobako.testing.snapshotter_suite`` (DESIGN.md, example 6).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing and dataclasses cost ~25 ms at start-up: the Protocol is for type checkers
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Protocol

    from kobako.mount import Mount
else:
    Protocol = object


class Kind:
    """VIEW, ACTIVE or COMMITTED; ``Kind("view")`` looks one up. A plain class: ``enum`` costs ~4 ms of
    every `kobako run`. Members are singletons, so ``is`` and ``==`` both work."""

    __slots__ = ("value",)
    _members: dict[str, Kind] = {}
    VIEW: Kind
    ACTIVE: Kind
    COMMITTED: Kind

    def __new__(cls, value: str) -> Kind:
        try:
            return cls._members[value]
        except KeyError:
            raise ValueError(f"{value!r} is not a snapshot kind") from None

    @property
    def name(self) -> str:
        return self.value.upper()

    def __repr__(self) -> str:
        return f"Kind.{self.name}"

    def __reduce__(self) -> tuple[type, tuple[str]]:  # pickle and copy give back the singleton
        return Kind, (self.value,)

    @classmethod
    def _add(cls, value: str) -> Kind:
        member = object.__new__(cls)
        member.value = value
        cls._members[value] = member
        return member


Kind.VIEW = Kind._add("view")
Kind.ACTIVE = Kind._add("active")
Kind.COMMITTED = Kind._add("committed")


class _Fields(tuple):
    """What these records used of ``collections.namedtuple`` (whose import costs ~3 ms of every `kobako run`):
    a tuple with named fields, keyword construction, ``_fields``, ``_replace``, ``_asdict``, a readable repr."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={v!r}' for n, v in zip(self._fields, self, strict=True))})"

    def _replace(self, **changes: object) -> _Fields:
        values = [changes.pop(name, value) for name, value in zip(self._fields, self, strict=True)]
        if changes:
            raise ValueError(f"unexpected field names: {list(changes)!r}")
        return type(self)(*values)

    def _asdict(self) -> dict[str, object]:
        return dict(zip(self._fields, self, strict=True))

    def __getnewargs__(self) -> tuple:
        return tuple(self)


class Info(_Fields):
    """One snapshot: ``key``, ``kind``, ``parent`` (key, "" for none), ``labels``, ``created``, ``updated``."""

    __slots__ = ()
    _fields = ("key", "kind", "parent", "labels", "created", "updated")

    def __new__(cls, key: str, kind: Kind, parent: str, labels: dict[str, str], created: float,
                updated: float) -> Info:  # fmt: skip
        return tuple.__new__(cls, (key, kind, parent, labels, created, updated))

    key: str = property(lambda self: self[0])  # type: ignore[assignment]
    kind: Kind = property(lambda self: self[1])  # type: ignore[assignment]
    parent: str = property(lambda self: self[2])  # type: ignore[assignment]
    labels: dict[str, str] = property(lambda self: self[3])  # type: ignore[assignment]
    created: float = property(lambda self: self[4])  # type: ignore[assignment]
    updated: float = property(lambda self: self[5])  # type: ignore[assignment]


class Usage(_Fields):
    """Disk use of a snapshot's own layer (not its parents): ``size`` (bytes of allocated blocks), ``inodes``."""

    __slots__ = ()
    _fields = ("size", "inodes")

    def __new__(cls, size: int, inodes: int) -> Usage:
        return tuple.__new__(cls, (size, inodes))

    size: int = property(lambda self: self[0])  # type: ignore[assignment]
    inodes: int = property(lambda self: self[1])  # type: ignore[assignment]


class Snapshotter(Protocol):
    root: str

    def stat(self, key: str) -> Info:
        """NotFound if there is no such snapshot."""
        ...

    def update(self, key: str, labels: Mapping[str, str | None]) -> Info:
        """Set labels (``None`` removes one)."""
        ...

    def usage(self, key: str) -> Usage: ...

    def mounts(self, key: str) -> list[Mount]:
        """Mounts for an ACTIVE or VIEW snapshot (FailedPrecondition for COMMITTED)."""
        ...

    def prepare(self, key: str, parent: str = "", labels: Mapping[str, str] | None = None) -> list[Mount]:
        """New ACTIVE snapshot on top of the COMMITTED ``parent``; AlreadyExists if ``key`` is taken."""
        ...

    def view(self, key: str, parent: str = "", labels: Mapping[str, str] | None = None) -> list[Mount]:
        """New read-only VIEW of the COMMITTED ``parent``."""
        ...

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """Turn the ACTIVE ``key`` into the COMMITTED ``name`` (``key`` ceases to exist)."""
        ...

    def remove(self, key: str) -> None:
        """Remove a snapshot; FailedPrecondition while it has children."""
        ...

    def walk(self, predicate: Callable[[Info], bool] | None = None) -> Iterator[Info]: ...

    def cleanup(self) -> list[str]:
        """Remove directories no snapshot owns any more (left by a crash); return what was removed."""
        ...

    def close(self) -> None: ...

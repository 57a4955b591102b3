"""``RUN --mount=...``: bind (context, stage or image; read-only unless ``rw``), cache and tmpfs mounts.

    --mount=type=bind,source=src,target=/src[,from=STAGE|IMAGE][,rw]
    --mount=type=cache,target=/root/.cache[,id=ID][,sharing=shared|private|locked][,mode=0755][,uid=0][,gid=0][,ro]
    --mount=type=tmpfs,target=/tmp[,size=BYTES]

Cache mounts live in ``<state root>/build/cache-mounts/`` and persist between builds without being part of
any cache key (as BuildKit's). A ``rw`` bind gets a throw-away overlay so writes never reach the source.
Secret and ssh mounts are refused: kobako build has no secret store.
"""

from __future__ import annotations

import hashlib
import os

from kobako.errors import FailedPrecondition, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.build.layers import View
    from kobako.build.session import Session
    from kobako.build.state import StageState

_KEYS = {
    "bind": ("target", "source", "from", "rw", "readonly", "ro", "readwrite"),
    "cache": ("target", "id", "sharing", "mode", "uid", "gid", "ro", "readonly", "source", "from"),
    "tmpfs": ("target", "size"),
}
_ALIASES = {"dst": "target", "destination": "target", "src": "source"}


class RunMount:
    __slots__ = (
        "from_",
        "gid",
        "id",
        "kind",
        "mode",
        "readonly",
        "sharing",
        "size",
        "source",
        "target",
        "uid",
    )

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.target = self.source = self.from_ = self.id = ""
        self.readonly = kind == "bind"
        self.sharing = "shared"
        self.mode, self.uid, self.gid, self.size = 0o755, 0, 0, 0


def parse_mount(value: str) -> RunMount:
    import csv

    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration):
        raise InvalidArgument(f"--mount={value!r}: cannot parse the comma-separated fields") from None
    opts: dict[str, str] = {}
    for field in fields:
        key, eq, val = field.strip().partition("=")
        key = _ALIASES.get(key.lower(), key.lower())
        opts[key] = val if eq else "true"
    kind = opts.pop("type", "bind")
    if kind in ("secret", "ssh"):
        raise FailedPrecondition(
            f"RUN --mount=type={kind} is not supported: kobako build has no secret store"
        )
    if kind not in _KEYS:
        raise InvalidArgument(f"--mount={value!r}: unknown mount type {kind!r} (want bind, cache or tmpfs)")
    m = RunMount(kind)
    for key, val in opts.items():
        if key not in _KEYS[kind]:
            raise InvalidArgument(f"--mount={value!r}: unexpected key {key!r} for type={kind}")
        flag = val.lower() in ("true", "1", "")
        if key == "target":
            m.target = val
        elif key == "source":
            m.source = val
        elif key == "from":
            m.from_ = val
        elif key in ("rw", "readwrite"):
            m.readonly = not flag
        elif key in ("ro", "readonly"):
            m.readonly = flag
        elif key == "id":
            m.id = val
        elif key == "sharing":
            if val not in ("shared", "private", "locked"):
                raise InvalidArgument(f"--mount={value!r}: sharing must be shared, private or locked")
            m.sharing = val
        elif key == "mode":
            m.mode = _number(val, 8, value, key)
        elif key in ("uid", "gid", "size"):
            setattr(m, key, _number(val, 10, value, key))
    if not m.target:
        raise InvalidArgument(f"--mount={value!r}: a target is required")
    if kind == "cache" and (m.from_ or m.source):
        raise FailedPrecondition("RUN --mount=type=cache with from= or source= is not supported")
    return m


def _number(text: str, base: int, value: str, key: str) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise InvalidArgument(f"--mount={value!r}: {key}={text!r} is not a number") from None


class MountSet:
    """The OCI mounts for a RUN's ``--mount`` flags, and what must be released after it."""

    def __init__(self, session: Session, mounts: list[RunMount], workdir: str, run_dir: str) -> None:
        self.session = session
        self.mounts = mounts
        self.workdir = workdir
        self.run_dir = run_dir
        self.views: list[View] = []
        self.locks: list[int] = []

    def key_parts(self, state: StageState) -> list:
        """What of the mounts decides the result: bind sources' contents (caches do not count)."""
        from kobako.build.context import checksum

        parts: list = []
        for m in self.mounts:
            target = self._target(m)
            if m.kind != "bind":
                parts.append([m.kind, target])
                continue
            if not m.from_:
                tree = self.session.context
                parts.append(["bind", target, m.readonly, checksum(tree, tree.sources(m.source or "."),
                                                                    self.session.cache)])  # fmt: skip
            else:
                parts.append(["bind", target, m.readonly, self._from(m.from_).key, m.source])
        return parts

    def _target(self, m: RunMount) -> str:
        return os.path.normpath(os.path.join(self.workdir or "/", m.target))

    def _from(self, ref: str) -> StageState:
        return self.session.stage_state(ref) or self.session.image_state(ref)

    def spec_mounts(self) -> list[dict]:
        out = []
        for n, m in enumerate(self.mounts):
            target = self._target(m)
            if m.kind == "tmpfs":
                opts = ["nosuid", "nodev", *([f"size={m.size}"] if m.size else [])]
                out.append({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts})
            elif m.kind == "cache":
                out.append(self._cache(m, target))
            else:
                out.append(self._bind(m, target, n))
        return out

    def _cache(self, m: RunMount, target: str) -> dict:
        ident = m.id or target
        base = os.path.join(self.session.state_root, "build", "cache-mounts")
        path = os.path.join(base, hashlib.sha256(ident.encode()).hexdigest()[:32])
        if m.sharing == "private":
            path = os.path.join(self.run_dir, "cache-private")
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, m.mode)
            os.chown(path, m.uid, m.gid)
        if m.sharing == "locked":
            import fcntl

            fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.locks.append(fd)
        return {"destination": target, "type": "bind", "source": path,
                "options": ["rbind", "ro" if m.readonly else "rw"]}  # fmt: skip

    def _bind(self, m: RunMount, target: str, n: int) -> dict:
        from kobako.build.context import SourceTree

        if m.from_:
            from kobako.build.layers import View

            view = View(self.session.layers, self._from(m.from_).top)
            self.views.append(view)
            tree = SourceTree(view.path, what=f"--mount from={m.from_}")
        else:
            tree = self.session.context
        source = tree.sources(m.source or ".")[0].host
        if m.readonly or not os.path.isdir(source):
            opts = ["rbind", "ro" if m.readonly else "rw"]
            return {"destination": target, "type": "bind", "source": source, "options": opts}
        upper, work = (
            os.path.join(self.run_dir, f"bind{n}-upper"),
            os.path.join(self.run_dir, f"bind{n}-work"),
        )
        os.makedirs(upper)
        os.makedirs(work)
        return {"destination": target, "type": "overlay", "source": "overlay",
                "options": [f"lowerdir={source}", f"upperdir={upper}", f"workdir={work}"]}  # fmt: skip

    def release(self) -> None:
        for fd in self.locks:
            os.close(fd)
        self.locks = []
        views, self.views = self.views, []
        for view in views:
            view.close()

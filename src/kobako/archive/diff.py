"""Make a layer tar from the changes of a snapshot, deterministically.

Two sources of changes: an overlayfs upper dir (:func:`write_upper_diff`: 0/0 character devices become
``.wh.NAME`` entries, opaque directories get a ``.wh..wh..opq`` entry), or two plain trees, the parent's and
the child's (:func:`write_dir_diff`, for the copying snapshotter: names only in the parent become whiteouts).

Output is reproducible: entries sorted by name with each directory before its contents and its whiteouts
first (as image-spec ``layer.md`` recommends), PAX headers only where ustar cannot hold a field, empty
user/group names, mtimes in whole seconds, no atime/ctime, gzip headers without name or time. The digest of the
uncompressed tar (the diff ID) and of the emitted blob are computed on the way.
"""

from __future__ import annotations

import os
import stat
from collections import namedtuple

from kobako.archive import tarformat as tf
from kobako.archive.compression import GZIP, CompressingWriter
from kobako.archive.whiteout import OPAQUE, PREFIX, is_whiteout_device, overlay_xattr
from kobako.errors import InvalidArgument
from kobako.oci.digest import BUFSIZE

TYPE_CHECKING = False  # typing and dataclasses cost start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Protocol

    class _Sink(Protocol):
        def write(self, data: bytes, /) -> object: ...


#: ``diff_id`` (digest of the uncompressed tar), ``digest`` and ``size`` (of what went to ``out``), ``compression``.
LayerDigests = namedtuple("LayerDigests", "diff_id digest size compression")


def write_upper_diff(
    upper: str | os.PathLike[str],
    out: _Sink,
    *,
    compression: str = GZIP,
    level: int | None = None,
    userxattr: bool = False,
) -> LayerDigests:
    """Write the layer that an overlay upper dir represents to ``out``."""
    w = _LayerWriter(out, compression, level, overlay_xattr("opaque", userxattr=userxattr))
    w.upper(os.fsencode(upper), b"")
    return w.finish()


def write_dir_diff(
    lower: str | os.PathLike[str] | None,
    upper: str | os.PathLike[str],
    out: _Sink,
    *,
    compression: str = GZIP,
    level: int | None = None,
) -> LayerDigests:
    """Write the layer that turns tree ``lower`` (None: an empty tree) into tree ``upper`` to ``out``."""
    w = _LayerWriter(out, compression, level, None)
    if lower is None:
        w.added(os.fsencode(upper), b"")
    else:
        w.compare(os.fsencode(lower), os.fsencode(upper), b"")
    return w.finish()


def _scan(path: bytes) -> dict[bytes, os.stat_result]:
    with os.scandir(path) as it:
        return {os.fsencode(e.name): e.stat(follow_symlinks=False) for e in it}


def _xattrs(path: bytes) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        if name.startswith(("trusted.overlay.", "user.overlay.")):
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


class _LayerWriter:
    def __init__(self, out: _Sink, compression: str, level: int | None, opaque_xattr: str | None) -> None:
        self._out = CompressingWriter(out, compression, level)
        self._compression = compression
        self._opaque = opaque_xattr
        self._links: dict[tuple[int, int], bytes] = {}

    def finish(self) -> LayerDigests:
        self._out.write(bytes(2 * tf.BLOCK))
        diff_id, digest, size = self._out.finish()
        return LayerDigests(diff_id, digest, size, self._compression)

    # -- entries -----------------------------------------------------------------------------------------

    def _whiteout(self, rel: bytes, name: bytes, mtime_ns: int = 0) -> None:
        self._out.write(
            tf.encode_header(tf.Entry(name=rel + PREFIX + name, type=tf.REG, mode=0o644, mtime_ns=mtime_ns))
        )

    def emit(self, path: bytes, rel: bytes, st: os.stat_result) -> None:
        """One entry for the object at ``path`` (its name in the layer is ``rel``)."""
        mode = st.st_mode
        e = tf.Entry(name=rel, type=tf.REG, mode=stat.S_IMODE(mode), uid=st.st_uid, gid=st.st_gid)
        e.mtime_ns = st.st_mtime_ns // 1_000_000_000 * 1_000_000_000
        e.xattrs = _xattrs(path)
        if stat.S_ISDIR(mode):
            e.type, e.name = tf.DIR, rel + b"/"
        elif stat.S_ISLNK(mode):
            e.type, e.linkname = tf.SYM, os.readlink(path)
        elif stat.S_ISSOCK(mode):
            return  # tar cannot carry sockets; they are runtime objects anyway
        elif not stat.S_ISREG(mode):
            e.type = {stat.S_IFCHR: tf.CHR, stat.S_IFBLK: tf.BLK, stat.S_IFIFO: tf.FIFO}[stat.S_IFMT(mode)]
            e.devmajor, e.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            first = self._links.setdefault((st.st_dev, st.st_ino), rel)
            if first != rel:
                e.type, e.linkname, e.xattrs = tf.LNK, first, {}
        if e.type != tf.REG:
            self._out.write(tf.encode_header(e))
            return
        e.size = st.st_size
        self._out.write(tf.encode_header(e))
        with open(path, "rb", buffering=0) as f:
            left = st.st_size
            while left:
                chunk = f.read(min(left, BUFSIZE))
                if not chunk:
                    raise InvalidArgument(f"{os.fsdecode(path)!r} shrank while it was being archived")
                self._out.write(chunk)
                left -= len(chunk)
        self._out.write(bytes(-st.st_size % tf.BLOCK))

    # -- overlay upper dir -------------------------------------------------------------------------------

    def upper(self, path: bytes, rel: bytes) -> None:
        prefix = rel + b"/" if rel else b""
        children = _scan(path)
        for name in sorted(children):
            if is_whiteout_device(children[name]):
                self._whiteout(prefix, name, children[name].st_mtime_ns // 10**9 * 10**9)
        for name in sorted(children):
            st = children[name]
            if is_whiteout_device(st):
                continue
            child = os.path.join(path, name)
            self._refuse_overlay_features(child, st)
            self.emit(child, prefix + name, st)
            if stat.S_ISDIR(st.st_mode):
                if self._is_opaque(child):
                    self._whiteout(
                        prefix + name + b"/", OPAQUE[len(PREFIX) :], st.st_mtime_ns // 10**9 * 10**9
                    )
                self.upper(child, prefix + name)

    def _is_opaque(self, path: bytes) -> bool:
        assert self._opaque is not None
        try:
            return os.getxattr(path, self._opaque, follow_symlinks=False) == b"y"
        except OSError:
            return False

    def _refuse_overlay_features(self, path: bytes, st: os.stat_result) -> None:
        assert self._opaque is not None
        base = self._opaque.rsplit(".", 1)[0]
        for feature in ("redirect", "metacopy"):
            try:
                os.getxattr(path, f"{base}.{feature}", follow_symlinks=False)
            except OSError:
                continue
            raise InvalidArgument(
                f"{os.fsdecode(path)!r} uses overlayfs {feature}, which layers cannot express"
            )

    # -- two plain trees ---------------------------------------------------------------------------------

    def added(self, path: bytes, rel: bytes) -> None:
        """Everything below ``path`` is new."""
        prefix = rel + b"/" if rel else b""
        children = _scan(path)
        for name in sorted(children):
            child, st = os.path.join(path, name), children[name]
            self.emit(child, prefix + name, st)
            if stat.S_ISDIR(st.st_mode):
                self.added(child, prefix + name)

    def compare(self, lower: bytes, upper: bytes, rel: bytes) -> None:
        prefix = rel + b"/" if rel else b""
        old, new = _scan(lower), _scan(upper)
        for name in sorted(old.keys() - new.keys()):
            self._whiteout(prefix, name)
        for name in sorted(new):
            ucur, st = os.path.join(upper, name), new[name]
            before = old.get(name)
            is_dir = stat.S_ISDIR(st.st_mode)
            if before is None or stat.S_IFMT(before.st_mode) != stat.S_IFMT(st.st_mode):
                self.emit(ucur, prefix + name, st)
                if is_dir:
                    self.added(ucur, prefix + name)
                continue
            lcur = os.path.join(lower, name)
            if _changed(lcur, before, ucur, st):
                self.emit(ucur, prefix + name, st)
            if is_dir:
                self.compare(lcur, ucur, prefix + name)


def _changed(lpath: bytes, a: os.stat_result, upath: bytes, b: os.stat_result) -> bool:
    if (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns, a.st_rdev) != (
        b.st_mode,
        b.st_uid,
        b.st_gid,
        b.st_mtime_ns,
        b.st_rdev,
    ):
        return True
    if not stat.S_ISDIR(a.st_mode) and a.st_size != b.st_size:
        return True
    if _xattrs(lpath) != _xattrs(upath):
        return True
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(lpath) != os.readlink(upath)
    if stat.S_ISREG(a.st_mode) and a.st_mtime_ns % 1_000_000_000 == 0:
        return not _same_content(lpath, upath)  # coarse timestamps: a same-second rewrite is possible
    return False


def _same_content(a: bytes, b: bytes) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(BUFSIZE), fb.read(BUFSIZE)
            if ca != cb:
                return False
            if not ca:
                return True

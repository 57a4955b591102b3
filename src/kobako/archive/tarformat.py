"""The tar format, read and written by hand: ustar, GNU long names and PAX extended headers.

Python's ``tarfile`` builds an object per member and decodes names to str; layer apply needs raw bytes
names, binary xattr values and far less work per header, so the parsing lives here. The reader is strict: a bad
checksum, a truncated stream, an oversized extended header or an unsupported member type (GNU sparse,
multi-volume) is an InvalidArgument naming the entry.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
NUL = b"\0"

TYPE_CHECKING = False  # typing and dataclasses cost start-up time; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Iterator
_MAX_EXTENDED = 1 << 20  # PAX header or GNU long name: more than this is hostile, not a file name

REG, LNK, SYM, CHR, BLK, DIR, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
_PLAIN_TYPES = {b"0": REG, b"\0": REG, b"7": REG, b"1": LNK, b"2": SYM, b"3": CHR, b"4": BLK, b"5": DIR}
_PLAIN_TYPES[b"6"] = FIFO
_PLAIN_TYPES[b"D"] = DIR  # GNU dump dir: a directory whose data is a listing
_DATA_TYPES = frozenset((b"0", b"\0", b"7", b"D", b"x", b"g", b"L", b"K"))  # members followed by data


class Entry:
    """One archive member with every name as raw bytes."""

    __slots__ = (
        "devmajor",
        "devminor",
        "gid",
        "linkname",
        "mode",
        "mtime_ns",
        "name",
        "size",
        "type",
        "uid",
        "xattrs",
    )

    def __init__(
        self,
        name: bytes,
        type: bytes,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        size: int = 0,
        mtime_ns: int = 0,
        linkname: bytes = b"",
        devmajor: int = 0,
        devminor: int = 0,
        xattrs: dict[str, bytes] | None = None,
    ) -> None:
        self.name, self.type, self.mode, self.uid, self.gid = name, type, mode, uid, gid
        self.size, self.mtime_ns, self.linkname = size, mtime_ns, linkname
        self.devmajor, self.devminor = devmajor, devminor
        self.xattrs = xattrs if xattrs is not None else {}

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, {self.type!r}, mode={self.mode:o}, size={self.size})"

    def display(self) -> str:
        return self.name.decode("utf-8", "backslashreplace")


def name_parts(name: bytes, what: str = "entry") -> list[bytes]:
    """Components of a member name, relative to the layer root ("/" and "." dropped); '..' is refused."""
    parts = [p for p in name.split(b"/") if p and p != b"."]
    if b".." in parts:
        raise InvalidArgument(
            f"layer {what} {name.decode('utf-8', 'backslashreplace')!r}: '..' is not allowed"
        )
    return parts


def _number(field_: bytes, what: str) -> int:
    if field_ and field_[0] & 0x80:  # GNU base-256
        value = int.from_bytes(field_[1:], "big")
        if field_[0] & 0x40:  # negative
            value -= 1 << (8 * (len(field_) - 1) + 6)
        return value
    text = field_.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise InvalidArgument(f"tar header: invalid {what} field {bytes(field_)!r}") from None


def _parse_pax(data: bytes, where: str) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding at the end
            break
        sp = data.find(b" ", pos)
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise InvalidArgument(f"{where}: malformed PAX record at offset {pos}") from None
        record = data[sp + 1 : pos + length]
        if length <= 0 or sp < 0 or pos + length > len(data) or not record.endswith(b"\n"):
            raise InvalidArgument(f"{where}: malformed PAX record at offset {pos}")
        key, eq, value = record[:-1].partition(b"=")
        if not eq:
            raise InvalidArgument(f"{where}: PAX record without '=' at offset {pos}")
        out[key] = value
        pos += length
    return out


def _pax_time_ns(value: bytes) -> int:
    whole, _, frac = value.partition(b".")
    sign = -1 if whole.startswith(b"-") else 1
    ns = int(whole or b"0") * 1_000_000_000
    if frac:
        ns += sign * int((frac + b"000000000")[:9])
    return ns


class TarReader:
    """Iterate the members of an uncompressed tar delivered as a sequence of byte chunks.

    After each entry the caller reads its data with :meth:`copy_to_fd`/:meth:`read_all` or leaves it: the
    next iteration skips whatever was not read.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self._remaining = 0  # unread data bytes of the current entry
        self._padding = 0
        self._global: dict[bytes, bytes] = {}
        self._has_data = False
        self.done = False

    # -- buffer ------------------------------------------------------------------------------------------

    def _fill(self, n: int) -> bool:
        """Make at least ``n`` bytes available at ``_pos``; False at end of stream."""
        avail = len(self._buf) - self._pos
        parts = [self._buf[self._pos :]] if avail else []
        while avail < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._buf, self._pos = b"".join(parts), 0
                return False
            parts.append(chunk)
            avail += len(chunk)
        self._buf, self._pos = (parts[0] if len(parts) == 1 else b"".join(parts)), 0
        return True

    def _take(self, n: int, what: str) -> bytes:
        if len(self._buf) - self._pos < n and not self._fill(n):
            raise InvalidArgument(f"tar stream truncated in {what}")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def _skip(self, n: int) -> None:
        while n:
            avail = len(self._buf) - self._pos
            if not avail and not self._fill(1):
                raise InvalidArgument("tar stream truncated while skipping entry data")
            step = min(n, len(self._buf) - self._pos)
            self._pos += step
            n -= step

    # -- data of the current entry -----------------------------------------------------------------------

    def pieces(self) -> Iterator[memoryview]:
        """Yield the current entry's unread data in pieces (views into the buffer: use them at once)."""
        while self._remaining:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._fill(1):
                    raise InvalidArgument("tar stream truncated inside entry data")
                avail = len(self._buf)
            step = min(avail, self._remaining)
            view = memoryview(self._buf)[self._pos : self._pos + step]
            self._pos += step
            self._remaining -= step
            yield view
        if self._padding:
            self._skip(self._padding)
            self._padding = 0

    def read_all(self, limit: int = _MAX_EXTENDED) -> bytes:
        if self._remaining > limit:
            raise InvalidArgument(f"tar entry data of {self._remaining} bytes is larger than {limit}")
        return b"".join(bytes(p) for p in self.pieces())

    # -- headers -----------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Entry]:
        return self

    def __next__(self) -> Entry:
        if self._remaining or self._padding:
            self._skip(self._remaining + self._padding)
            self._remaining = self._padding = 0
        if self.done:
            raise StopIteration
        pax: dict[bytes, bytes] = {}
        global_pax = self._global
        long_name = long_link = None
        while True:
            if len(self._buf) - self._pos < BLOCK and not self._fill(BLOCK):
                if len(self._buf) == self._pos:  # missing end-of-archive blocks: accepted, like GNU tar
                    self.done = True
                    raise StopIteration
                raise InvalidArgument("tar stream truncated in a header")
            pos = self._pos
            blk = self._buf[pos : pos + BLOCK]
            self._pos = pos + BLOCK
            if blk == ZERO_BLOCK:
                self.done = True
                raise StopIteration
            entry = self._header(blk)
            size = entry.size
            if entry.type in (b"x", b"g", b"L", b"K"):
                if size > _MAX_EXTENDED:
                    raise InvalidArgument(f"tar extended header of {size} bytes is too large")
                data = self._take(size, "an extended header")
                self._skip(-size % BLOCK)
                if entry.type == b"x":
                    pax.update(_parse_pax(data, "PAX header"))
                elif entry.type == b"g":
                    global_pax = {**global_pax, **_parse_pax(data, "global PAX header")}
                    self._global = global_pax
                elif entry.type == b"L":
                    long_name = data.split(b"\0", 1)[0]
                else:
                    long_link = data.split(b"\0", 1)[0]
                continue
            break
        if long_name is not None:
            entry.name = long_name
        if long_link is not None:
            entry.linkname = long_link
        if global_pax or pax:
            _apply_pax(entry, {**global_pax, **pax})
        data_size = entry.size if self._has_data else 0
        self._remaining = data_size
        self._padding = -data_size % BLOCK
        if entry.type != REG:
            entry.size = 0
        return entry

    def _header(self, blk: bytes) -> Entry:
        stored = _number(blk[148:156], "checksum")
        unsigned = sum(blk) - sum(blk[148:156]) + 256
        if stored != unsigned and stored != unsigned - 2 * sum(b for b in blk if b > 127):
            raise InvalidArgument(f"tar header checksum mismatch (entry {blk[:100].split(NUL, 1)[0]!r})")
        raw_type = blk[156:157]
        self._has_data = raw_type in _DATA_TYPES
        name = blk[0:100].split(b"\0", 1)[0]
        magic = blk[257:265]
        if magic[:6] == b"ustar\0" and blk[345] != 0:  # POSIX prefix field (not in GNU's "ustar  \0")
            name = blk[345:500].split(b"\0", 1)[0] + b"/" + name
        kind = _PLAIN_TYPES.get(raw_type)
        if kind is None:
            if raw_type in (b"x", b"g", b"L", b"K"):
                kind = raw_type
            elif raw_type == b"S":
                raise InvalidArgument(f"tar entry {name!r}: GNU sparse files are not supported")
            else:
                raise InvalidArgument(f"tar entry {name!r}: unsupported member type {raw_type!r}")
        return Entry(
            name=name,
            type=kind,
            mode=_number(blk[100:108], "mode") & 0o7777,
            uid=_number(blk[108:116], "uid"),
            gid=_number(blk[116:124], "gid"),
            size=_number(blk[124:136], "size"),
            mtime_ns=_number(blk[136:148], "mtime") * 1_000_000_000,
            linkname=blk[157:257].split(b"\0", 1)[0],
            devmajor=_number(blk[329:337], "devmajor") if kind in (CHR, BLK) else 0,
            devminor=_number(blk[337:345], "devminor") if kind in (CHR, BLK) else 0,
        )


def _apply_pax(entry: Entry, pax: dict[bytes, bytes]) -> None:
    try:
        for key, value in pax.items():
            if key == b"path":
                entry.name = value
            elif key == b"linkpath":
                entry.linkname = value
            elif key == b"size":
                entry.size = int(value)
            elif key == b"uid":
                entry.uid = int(value)
            elif key == b"gid":
                entry.gid = int(value)
            elif key == b"mtime":
                entry.mtime_ns = _pax_time_ns(value)
            elif key.startswith(b"SCHILY.xattr."):
                entry.xattrs[key[13:].decode("utf-8", "surrogateescape")] = value
            elif key.startswith(b"LIBARCHIVE.xattr."):
                import base64
                import urllib.parse

                name = urllib.parse.unquote_to_bytes(key[17:]).decode("utf-8", "surrogateescape")
                entry.xattrs[name] = base64.b64decode(value + b"=" * (-len(value) % 4))
            elif key.startswith(b"GNU.sparse."):
                raise InvalidArgument(f"tar entry {entry.display()!r}: GNU sparse files are not supported")
    except ValueError:
        raise InvalidArgument(f"tar entry {entry.display()!r}: malformed PAX value") from None
    if entry.size < 0:
        raise InvalidArgument(f"tar entry {entry.display()!r}: negative size")


# -- writing ---------------------------------------------------------------------------------------------


def _octal(value: int, width: int) -> bytes | None:
    text = b"%0*o" % (width - 1, value)
    return text + b"\0" if len(text) < width and value >= 0 else None


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n = len(b"%d" % n) + len(body)
    return b"%d" % n + body


def encode_header(entry: Entry) -> bytes:
    """Header block(s) for ``entry``: a PAX header first when a field does not fit ustar."""
    pax: list[bytes] = []
    name, linkname = entry.name, entry.linkname
    if len(name) > 100 or not name.isascii():
        pax.append(_pax_record(b"path", name))
        name = name[:100]
    if len(linkname) > 100 or not linkname.isascii():
        pax.append(_pax_record(b"linkpath", linkname))
        linkname = linkname[:100]
    fields = {"uid": (entry.uid, 8), "gid": (entry.gid, 8), "size": (entry.size, 12)}
    encoded = {}
    for key, (value, width) in fields.items():
        octal = _octal(value, width)
        if octal is None:
            pax.append(_pax_record(key.encode(), b"%d" % value))
            octal = _octal(0, width)
        encoded[key] = octal
    mtime = entry.mtime_ns // 1_000_000_000
    mtime_field = _octal(mtime, 12)
    if mtime_field is None:
        pax.append(_pax_record(b"mtime", b"%d" % mtime))
        mtime_field = _octal(0, 12)
    for key in sorted(entry.xattrs):
        pax.append(_pax_record(b"SCHILY.xattr." + key.encode("utf-8", "surrogateescape"), entry.xattrs[key]))
    block = _block(
        name, entry.mode, encoded, mtime_field, entry.type, linkname, entry.devmajor, entry.devminor
    )
    if not pax:
        return block
    data = b"".join(pax)
    pax_name = b"PaxHeaders/" + entry.name.rsplit(b"/", 1)[-1][:80]
    head = _block(pax_name, 0o644, {"uid": _octal(0, 8), "gid": _octal(0, 8), "size": _octal(len(data), 12)},
                  mtime_field, b"x", b"", 0, 0)  # fmt: skip
    return head + data + bytes(-len(data) % BLOCK) + block


def _block(
    name: bytes, mode: int, nums: dict, mtime: bytes, kind: bytes, linkname: bytes, major: int, minor: int
) -> bytes:
    blk = bytearray(BLOCK)
    blk[0 : len(name)] = name
    blk[100:108] = _octal(mode & 0o7777, 8) or b""
    blk[108:116] = nums["uid"]
    blk[116:124] = nums["gid"]
    blk[124:136] = nums["size"]
    blk[136:148] = mtime
    blk[148:156] = b" " * 8
    blk[156:157] = kind
    blk[157 : 157 + len(linkname)] = linkname
    blk[257:265] = b"ustar\x0000"
    if kind in (CHR, BLK):
        blk[329:337] = _octal(major, 8) or b"0000000\0"
        blk[337:345] = _octal(minor, 8) or b"0000000\0"
    blk[148:156] = b"%06o\0 " % sum(blk)
    return bytes(blk)

"""libc calls through ``_ctypes`` directly: the ``ctypes`` package costs ~5 ms to import (a seventh of
a container start), and the runtime needs only a dozen plain calls.

``call(name, *args)`` calls a libc function returning ``int``, ``call_long`` one returning ``long``
(``syscall``). Arguments are Python ints (C ``int``), bytes (``const char *``), ``None`` (NULL), or the
values made by ``ulong()`` and ``u32_array()``. A -1 result raises OSError with errno. Where ``_ctypes``
lacks what is used here (another interpreter), the ``ctypes`` package does the same job.
"""

from __future__ import annotations

import os

try:
    import _ctypes

    class _CInt(_ctypes._SimpleCData):
        _type_ = "i"

    class _CLong(_ctypes._SimpleCData):
        _type_ = "l"

    class _CULong(_ctypes._SimpleCData):
        _type_ = "L"

    class _CU32(_ctypes._SimpleCData):
        _type_ = "I"

    class _CU64(_ctypes._SimpleCData):
        _type_ = "Q"

    class _CU8(_ctypes._SimpleCData):
        _type_ = "B"

    address = _ctypes.addressof

    _FLAGS = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO

    class _IntFunc(_ctypes.CFuncPtr):
        _flags_ = _FLAGS
        _restype_ = _CInt

    class _LongFunc(_ctypes.CFuncPtr):
        _flags_ = _FLAGS
        _restype_ = _CLong

    class _Process:
        """What CFuncPtr needs of a library: its dlopen handle (NULL: the symbols already loaded)."""

        _handle = _ctypes.dlopen(None, 2)  # RTLD_NOW

    get_errno = _ctypes.get_errno
    _array_types: dict[tuple[type, int], type] = {}

    def _array_type(item: type, n: int) -> type:
        kind = _array_types.get((item, n))
        if kind is None:
            kind = _array_types[(item, n)] = type(
                f"{item.__name__}x{n}", (_ctypes.Array,), {"_type_": item, "_length_": n}
            )
        return kind

except (ImportError, AttributeError):  # pragma: no cover - not CPython
    import ctypes

    _CULong = ctypes.c_ulong  # type: ignore[misc,assignment]

    class _Process:  # type: ignore[no-redef]
        _handle = ctypes.CDLL(None, use_errno=True)._handle

    def _IntFunc(spec: tuple[str, object]) -> object:  # type: ignore[no-redef]
        f = getattr(ctypes.CDLL(None, use_errno=True), spec[0])
        f.restype = ctypes.c_int
        return f

    def _LongFunc(spec: tuple[str, object]) -> object:  # type: ignore[no-redef]
        f = getattr(ctypes.CDLL(None, use_errno=True), spec[0])
        f.restype = ctypes.c_long
        return f

    get_errno = ctypes.get_errno

    _CU32, _CU64, _CU8 = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint8  # type: ignore[misc,assignment]
    address = ctypes.addressof  # type: ignore[assignment]

    def _array_type(item: type, n: int) -> type:  # type: ignore[misc]
        return item * n


_int_funcs: dict[str, object] = {}
_long_funcs: dict[str, object] = {}


def call(name: str, *args: object) -> int:
    """Call the libc function ``name`` (returning int); -1 raises OSError."""
    func = _int_funcs.get(name)
    if func is None:
        func = _int_funcs[name] = _IntFunc((name, _Process))
    result: int = func(*args)  # type: ignore[operator]
    if result == -1:
        err = get_errno()
        raise OSError(err, os.strerror(err))
    return result


def call_long(name: str, *args: object) -> int:
    """Call the libc function ``name`` (returning long, e.g. ``syscall``); -1 raises OSError."""
    func = _long_funcs.get(name)
    if func is None:
        func = _long_funcs[name] = _LongFunc((name, _Process))
    result: int = func(*args)  # type: ignore[operator]
    if result == -1:
        err = get_errno()
        raise OSError(err, os.strerror(err))
    return result


def ulong(value: int) -> object:
    """An ``unsigned long`` argument (for prctl/syscall arguments wider than int)."""
    return _CULong(value)


def u32_array(values: list[int]) -> object:
    """A ``uint32_t[]`` buffer passed by pointer; read it back with ``list(buffer)``."""
    return _array_type(_CU32, len(values))(*values)


def u64_array(values: list[int]) -> object:
    """A ``uint64_t[]`` buffer passed by pointer (e.g. ``struct rlimit``); read it back with ``list()``."""
    return _array_type(_CU64, len(values))(*values)


def byte_buffer(data: bytes, size: int = 0) -> object:
    """A writable ``uint8_t[]`` holding ``data`` (zero-padded to ``size``); ``address(buf)`` is its
    pointer, ``bytes(buf)`` its contents (for structures the kernel reads or fills, e.g. bpf(2))."""
    buf = _array_type(_CU8, max(size, len(data), 1))()
    memoryview(buf).cast("B")[: len(data)] = data  # type: ignore[arg-type]
    return buf

"""nftables commands through libnftables (in-process: no fork/exec of ``nft`` per change).

``Nft().run(text)`` runs one batch atomically (all of it or nothing) in the calling thread's network
namespace and returns nft's output; ``Nft(json=True)`` lists as JSON. Where libnftables.so.1 is missing the
``nft`` binary does the same job (``nft -f -``).
"""

from __future__ import annotations

import os

from kobako.errors import FailedPrecondition, Internal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NFT_CTX_OUTPUT_HANDLE, _NFT_CTX_OUTPUT_JSON = 1 << 3, 1 << 4
_LIB_NAMES = ("libnftables.so.1",)
_lib: Any = None


class NftError(Internal):
    """nft refused a batch (nothing of it was applied); ``missing``/``exists`` read nft's own message."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text

    @property
    def missing(self) -> bool:
        return "No such file or directory" in self.message

    @property
    def exists(self) -> bool:
        return "File exists" in self.message


def _load() -> Any:
    global _lib
    if _lib is None:
        import ctypes

        for name in _LIB_NAMES:
            try:
                lib = ctypes.CDLL(name, use_errno=True)
                break
            except OSError:
                continue
        else:
            _lib = False
            return _lib
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        _lib = lib
    return _lib


def preload() -> None:
    """Load libnftables now (the monitor's preload: see warm.py); a missing library is not an error here."""
    _load()


class Nft:
    def __init__(self, json: bool = False) -> None:
        self.json = json
        self._ctx: int | None = None
        self._lib = _load()

    def _context(self) -> int:
        if self._ctx is None:
            lib = self._lib
            ctx = lib.nft_ctx_new(0)
            if not ctx:
                raise Internal("libnftables: nft_ctx_new failed")
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            lib.nft_ctx_output_set_flags(ctx, _NFT_CTX_OUTPUT_JSON if self.json else 0)
            self._ctx = ctx
        return self._ctx

    def close(self) -> None:
        if self._ctx is not None:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None

    def run(self, text: str) -> str:
        if not self._lib:
            return self._run_binary(text)
        ctx = self._context()
        rc = self._lib.nft_run_cmd_from_buffer(ctx, text.encode())
        out = (self._lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
        err = (self._lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        if rc != 0:
            raise NftError(f"nftables: {_first_error(err) or 'command failed'}", text)
        return out

    def _run_binary(self, text: str) -> str:
        import shutil
        import subprocess

        binary = shutil.which("nft") or ("/usr/sbin/nft" if os.path.exists("/usr/sbin/nft") else "")
        if not binary:
            raise FailedPrecondition("nftables is needed for container networking: install nftables")
        args = [binary, *(["-j"] if self.json else []), "-f", "-"]
        proc = subprocess.run(args, input=text.encode(), capture_output=True, check=False)
        if proc.returncode != 0:
            raise NftError(f"nftables: {_first_error(proc.stderr.decode()) or 'command failed'}", text)
        return proc.stdout.decode()


def _first_error(err: str) -> str:
    for line in err.splitlines():
        if "Error:" in line:
            return line.split("Error:", 1)[1].strip()
    return err.strip().splitlines()[0] if err.strip() else ""

"""JSON for the runtime's hot path without importing ``json``.

``import json`` pulls in ``re`` (≈10 ms of a ~30 ms container start). CPython's C accelerator ``_json`` does
the real work for the json package anyway; driving it directly gives identical results. Where ``_json`` is
missing (another interpreter) we fall back to the json package.
"""

from __future__ import annotations

from kobako.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs ~10 ms at start-up; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

try:
    import _json
except ImportError:  # pragma: no cover - non-CPython
    _json = None  # type: ignore[assignment]

_WS = " \t\n\r"


def _bad_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_bad_constant)
    memo: dict[str, str]

    def __init__(self) -> None:
        self.memo = {}


def loads(text: str | bytes, what: str = "JSON") -> Any:
    """Parse one JSON document; errors name ``what`` and the position."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as exc:
            raise InvalidArgument(f"{what}: not UTF-8: {exc}") from exc
    if _json is None:  # pragma: no cover
        import json

        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidArgument(f"{what}: {exc}") from exc
    n = len(text)
    i = 0
    while i < n and text[i] in _WS:
        i += 1
    try:
        value, end = _json.make_scanner(_ScanContext())(text, i)
    except StopIteration as exc:
        raise InvalidArgument(f"{what}: expected a value at char {exc.value}") from None
    except ValueError as exc:
        raise InvalidArgument(f"{what}: {exc}") from exc
    while end < n and text[end] in _WS:
        end += 1
    if end != n:
        raise InvalidArgument(f"{what}: extra data at char {end}")
    return value


def _reject(obj: Any) -> Any:
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def dumps(obj: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    if _json is None or indent is not None:
        import json

        return json.dumps(obj, indent=indent, sort_keys=sort_keys)
    encode = _json.make_encoder(
        None, _reject, _json.encode_basestring_ascii, None, ": ", ", ", sort_keys, False, True
    )
    return "".join(encode(obj, 0))

"""JSON values in and out: the NaN policy and numpy/pandas → plain JSON conversion.

Policy (also in docs/PROTOCOL.md, "Numbers, NaN and missing values"):
- In: NaN, Infinity and -Infinity are not JSON. A request line containing those tokens
  is a parse error; a number too large for a float (``1e400``) is refused by the
  field checks. ``null`` in a trace column means "missing".
- Out: every non-finite float the worker would send (an undefined statistic, say)
  is sent as ``null``. Nothing the worker writes is ever outside strict JSON.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any


class NonJsonConstant(ValueError):
    """Raised while parsing when a line holds NaN/Infinity tokens."""


def _reject_constant(token: str) -> Any:
    raise NonJsonConstant(f"{token} is not valid JSON (send null for a missing value)")


#: one decoder for every line: ``json.loads`` with an option builds a new one per call
#: (a tenth of a ``ping``'s time in the worker); a decoder keeps no state between texts
_STRICT = json.JSONDecoder(parse_constant=_reject_constant)


def loads_strict(text: str) -> Any:
    """Parse one JSON text, refusing NaN/Infinity tokens (and a BOM, as ``json.loads``)."""
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _STRICT.decode(text)


class AsciiText:
    """A JSON string's characters that need no escaping (base64, say), kept as bytes.

    ``dumps_line`` writes them between quotes as they are. ``json.dumps`` would have to
    scan and copy a ``str`` of them character by character: for a million-row sample of
    20 nodes (213 MB of base64) that took about a second.
    """

    __slots__ = ("chars",)

    def __init__(self, chars: bytes) -> None:
        self.chars = chars

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsciiText) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)


class _HasAsciiText(Exception):
    """The value holds an AsciiText: the shared encoder stops, the splicing one runs."""


def _plain_default(obj: Any) -> Any:
    if isinstance(obj, AsciiText):
        raise _HasAsciiText
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


#: the encoder for lines without AsciiText (almost all): ``json.dumps`` with options
#: builds a new encoder per call; an encoder keeps no state between values
_PLAIN = json.JSONEncoder(allow_nan=False, separators=(",", ":"), default=_plain_default)


def dumps_line(value: Any) -> bytes:
    """``value`` as one compact line of strict ASCII JSON (ValueError on anything
    non-finite), each AsciiText in it spliced in as it is."""
    try:
        return (_PLAIN.encode(value) + "\n").encode("ascii")
    except _HasAsciiText:
        return _spliced_line(value)


def _spliced_line(value: Any) -> bytes:
    """``dumps_line`` for a value holding AsciiText.

    The encoder writes a placeholder string for each AsciiText (a fresh random token, so
    no other string can look like it), in the order the pieces appear in the text.
    """
    pieces: list[bytes] = []
    token = f"\0{uuid.uuid4().hex}\0"

    def placeholder(obj: Any) -> str:
        if not isinstance(obj, AsciiText):
            raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
        pieces.append(obj.chars)
        return token

    text = json.dumps(value, allow_nan=False, separators=(",", ":"), default=placeholder)
    parts = text.split(json.dumps(token))
    assert len(parts) == len(pieces) + 1, "a placeholder token appeared in the data"
    line = [parts[0].encode("ascii")]
    for piece, part in zip(pieces, parts[1:], strict=True):
        line += [b'"', piece, b'"', part.encode("ascii")]
    line.append(b"\n")
    return b"".join(line)


def json_object(value: dict[str, Any]) -> dict[str, Any]:
    """``to_json`` for a result object (a dict stays a dict)."""
    converted = to_json(value)
    assert isinstance(converted, dict)
    return converted


def to_json(value: Any) -> Any:
    """Convert numpy/pandas scalars and arrays to plain JSON values; non-finite → None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int, AsciiText)):
        return value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if tolist is not None:  # numpy arrays and scalars, pandas Series
        return to_json(tolist())
    item = getattr(value, "item", None)
    if item is not None:
        return to_json(item())
    return str(value)

"""JSON values in and out: the NaN policy and numpy/pandas → plain JSON conversion.

Policy (also in the README):
- In: NaN, Infinity and -Infinity are not JSON. A request line containing those tokens
  is a parse error; a number too large for a float (``1e400``) is refused by the
  field checks. ``null`` in a trace column means "missing".
- Out: every non-finite float the worker would send (an undefined statistic, say)
  is sent as ``null``. Nothing the worker writes is ever outside strict JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any


class NonJsonConstant(ValueError):
    """Raised while parsing when a line holds NaN/Infinity tokens."""


def _reject_constant(token: str) -> Any:
    raise NonJsonConstant(f"{token} is not valid JSON (send null for a missing value)")


def loads_strict(text: str) -> Any:
    """Parse one JSON text, refusing NaN/Infinity tokens."""
    return json.loads(text, parse_constant=_reject_constant)


def dumps_strict(value: Any, ascii_only: bool = False) -> str:
    """Serialize compactly on one line; raises ValueError on anything non-finite."""
    return json.dumps(value, allow_nan=False, ensure_ascii=ascii_only, separators=(",", ":"))


def json_object(value: dict[str, Any]) -> dict[str, Any]:
    """``to_json`` for a result object (a dict stays a dict)."""
    converted = to_json(value)
    assert isinstance(converted, dict)
    return converted


def to_json(value: Any) -> Any:
    """Convert numpy/pandas scalars and arrays to plain JSON values; non-finite → None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
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

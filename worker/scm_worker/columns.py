"""Columns on the wire: JSON lists or binary blocks in, checked typed numpy arrays; and out.

A column arrives either as a JSON array (numbers, strings, booleans, ``null`` for
missing) or as a binary block ``{"dtype": "float64" | "int64" | "bool", "data":
base64}`` of little-endian values, where NaN in a float64 block means missing, as
``null`` does. Both become the same ``Column``, so a fit cannot tell them apart.

The checks run at numpy speed: the set of Python types in a list is taken in one C
pass and the conversion is one ``numpy.array`` call. Only when that pass finds
something wrong does the per-value loop run, so every error still names the first bad
value (``traces.X[17]``) exactly as it always has.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import numpy as np

from .errors import invalid_params
from .jsonio import AsciiText

ColumnKind = Literal["numeric", "categorical", "boolean"]

#: what ``initialize`` announces: every request column may come in either encoding
ENCODINGS: Final = ("json", "binary")
#: how a result's numeric columns may travel: in the line as lists or base64, or attached
ResultEncoding = Literal["json", "binary", "attached"]
RESULT_ENCODINGS: Final = get_args(ResultEncoding)
#: binary dtypes on the wire → numpy's little-endian dtype
BINARY_DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "float64": np.dtype("<f8"), "int64": np.dtype("<i8"), "bool": np.dtype("u1")
}
BINARY_MEMBERS: Final = frozenset({"dtype", "data"})
_NONE = type(None)


@dataclass(frozen=True, eq=False)  # arrays have no single truth value
class Column:
    """One trace column.

    ``data`` is float64 with NaN for missing when numeric; an object array of strings
    or booleans with None for missing otherwise.
    """

    kind: ColumnKind
    data: np.ndarray

    def __len__(self) -> int:
        return len(self.data)

    @property
    def missing(self) -> np.ndarray:
        """A boolean mask of the missing cells."""
        mask: np.ndarray = np.isnan(self.data) if self.kind == "numeric" else self.data == None
        return mask

    @property
    def values(self) -> list[Any]:
        """The column as JSON values (None for missing)."""
        if self.kind == "numeric":
            return [None if math.isnan(v) else v for v in self.data.tolist()]
        return list(self.data)


def decode_column(value: Any, field: str) -> Column:
    """A column from the wire, in either encoding; -32602 naming the field when bad."""
    if isinstance(value, list):
        return column_from_list(value, field)
    if isinstance(value, dict):
        return column_from_binary(value, field)
    raise invalid_params(
        field, f"must be an array or a binary column {{dtype, data}}, got {json_type(value)}"
    )


def column_from_list(values: list[Any], field: str) -> Column:
    """A JSON array: numeric, categorical or boolean by the values' types; null is missing."""
    types = set(map(type, values))
    types.discard(_NONE)
    if types <= {int, float}:
        return _numeric_from_list(values, field)
    if types in ({str}, {bool}):
        kind: ColumnKind = "categorical" if types == {str} else "boolean"
        return Column(kind, _object_array(values))
    raise _first_problem(values, field)


def _numeric_from_list(values: list[Any], field: str) -> Column:
    try:
        data = np.array(values, dtype=np.float64)  # None → NaN
    except OverflowError:
        raise _first_problem(values, field) from None
    infinite = np.isinf(data)
    if infinite.any():
        raise _not_finite(field, int(np.argmax(infinite)))
    if np.count_nonzero(np.isnan(data)) != values.count(None):  # a NaN float, not a null
        raise _first_problem(values, field)
    return Column("numeric", data)


def _object_array(values: list[Any]) -> np.ndarray:
    data = np.empty(len(values), dtype=object)
    data[:] = values
    return data


def _first_problem(values: list[Any], field: str) -> Exception:
    """The per-value scan, run only once the fast pass saw a problem: the first bad value."""
    kinds: set[str] = set()
    for i, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, (int, float)):
            if not _fits_float(value):
                return _not_finite(field, i)
            kinds.add("numeric")
        elif isinstance(value, str):
            kinds.add("categorical")
        else:
            return invalid_params(
                f"{field}[{i}]",
                f"values must be numbers, strings, booleans or null, got {json_type(value)}",
            )
        if len(kinds) > 1:
            return invalid_params(field, f"column mixes value types: {sorted(kinds)}")
    raise AssertionError(f"{field}: the fast pass refused a column the scan accepts")


def _fits_float(value: float) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _not_finite(field: str, index: int) -> Exception:
    return invalid_params(f"{field}[{index}]", "number is not finite (too large for a float?)")


def column_from_binary(block: dict[str, Any], field: str) -> Column:
    """``{"dtype", "data"}``: little-endian values, base64; NaN in float64 means missing."""
    unknown = set(block) - BINARY_MEMBERS
    if unknown:
        raise invalid_params(
            f"{field}.{min(unknown)}", "unknown member of a binary column (dtype, data)"
        )
    dtype_name = block.get("dtype")
    if dtype_name not in BINARY_DTYPES:
        raise invalid_params(
            f"{field}.dtype", f"must be one of {sorted(BINARY_DTYPES)}, got {dtype_name!r}"
        )
    dtype = BINARY_DTYPES[dtype_name]
    raw = _base64_bytes(block.get("data"), f"{field}.data")
    if len(raw) % dtype.itemsize:
        raise invalid_params(
            f"{field}.data",
            f"{len(raw)} bytes is not a whole number of {dtype_name} values "
            f"({dtype.itemsize} bytes each)",
        )
    array = np.frombuffer(raw, dtype=dtype)
    if dtype_name == "bool":
        return _boolean_from_bytes(array, field)
    data = array.astype(np.float64)  # a native, writable copy; int64 → float64 as JSON ints are
    infinite = np.isinf(data)
    if infinite.any():
        raise _not_finite(field, int(np.argmax(infinite)))
    return Column("numeric", data)


def _base64_bytes(text: Any, field: str) -> bytes:
    if not isinstance(text, str):
        raise invalid_params(field, f"must be a base64 string, got {json_type(text)}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid_params(field, f"is not valid base64 ({exc})") from None


def _boolean_from_bytes(array: np.ndarray, field: str) -> Column:
    invalid = array > 1
    if invalid.any():
        index = int(np.argmax(invalid))
        raise invalid_params(
            f"{field}[{index}]", f"a bool value must be byte 0 or 1, got {int(array[index])}"
        )
    return Column("boolean", _object_array((array == 1).tolist()))


def float64_bytes(values: np.ndarray) -> memoryview:
    """A float result column's wire bytes: little-endian float64, NaN for every non-finite
    value (the column's own buffer when it has none and is contiguous already).

    NaN is what ``null`` is in a JSON list (missing or undefined), so a result reads the
    same in every encoding.
    """
    data = np.ascontiguousarray(values, dtype="<f8")
    finite = np.isfinite(data)
    if not finite.all():
        data = np.where(finite, data, np.nan).astype("<f8", copy=False)
    return memoryview(data).cast("B")


def encode_binary(values: np.ndarray) -> dict[str, Any]:
    """A float column as a base64 block in the line."""
    return {"dtype": "float64", "data": AsciiText(base64.b64encode(float64_bytes(values)))}


def update_digest(digest: Any, name: str, column: Column) -> None:
    """Feed a column's canonical bytes to a hash (the fit cache's key).

    The same values hash the same whichever encoding brought them: numbers as
    little-endian float64 with one NaN pattern for every missing cell, other kinds as
    their JSON text. Names and lengths are framed, so no two columns run together.
    """
    digest.update(json.dumps([name, column.kind, len(column)]).encode())
    if column.kind == "numeric":
        canonical = np.where(np.isnan(column.data), np.nan, column.data).astype("<f8", copy=False)
        digest.update(canonical.tobytes())
    else:
        digest.update(json.dumps(column.values, separators=(",", ":")).encode())


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__

"""Trace columns ↔ pandas: how JSON values are laid out for DoWhy and read back.

Numbers become float64 (null → NaN). Strings stay strings, so DoWhy treats them as
categorical. Booleans are carried as the strings "True"/"False": DoWhy and
scikit-learn's encoders mishandle bool-typed parents in some versions, and strings are
what DoWhy's docs ask for; they are turned back into booleans on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..columns import Column, ColumnKind

_BOOL_TO_STR = {True: "True", False: "False"}
_STR_TO_BOOL = {"True": True, "False": False}


@dataclass(frozen=True)
class Frame:
    """Complete rows ready for DoWhy, and how many incomplete ones were dropped."""

    data: pd.DataFrame
    kinds: dict[str, ColumnKind]
    dropped_rows: int


def to_frame(columns: dict[str, Column]) -> Frame:
    """The complete rows (no NaN, no null) as a DataFrame that holds the columns' arrays.

    ``DataFrame(dict)``, ``dropna`` and ``reset_index`` each copied every column (the
    first into one stacked block): 4 s of a 1,000,000-row × 10-node fit's overhead. Here
    a column is copied only if it is read-only (a binary block's buffer) or rows drop.
    """
    arrays = {name: _to_array(col) for name, col in columns.items()}
    complete = _complete(arrays)
    dropped = int(complete.size - np.count_nonzero(complete))
    if dropped:
        arrays = {name: values[complete] for name, values in arrays.items()}
    writable = {n: a if a.flags.writeable else a.copy() for n, a in arrays.items()}
    kinds = {name: col.kind for name, col in columns.items()}
    return Frame(pd.DataFrame(writable, copy=False), kinds, dropped)


def _complete(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Rows with a value in every column (``dropna``'s rule: NaN and None are missing)."""
    rows = len(next(iter(arrays.values()), np.empty(0)))
    complete = np.ones(rows, dtype=bool)
    for values in arrays.values():
        complete &= ~(np.isnan(values) if values.dtype.kind == "f" else pd.isna(values))
    return complete


def _to_array(column: Column) -> np.ndarray:
    if column.kind != "boolean":
        return column.data
    strings = np.full(len(column), None, dtype=object)
    strings[column.data == True] = "True"  # elementwise, on an object array
    strings[column.data == False] = "False"
    return strings


def encode_value(value: Any, kind: ColumnKind) -> Any:
    """A single JSON value (e.g. an intervention's) in the frame's representation."""
    if kind == "boolean":
        return _BOOL_TO_STR[value]
    if kind == "numeric":
        return float(value)
    return value


def decode_values(values: np.ndarray | pd.Series, kind: ColumnKind) -> list[Any]:
    """Sampled values back to JSON: floats, strings, or booleans."""
    if kind == "boolean":
        return [_STR_TO_BOOL.get(str(v), v) for v in values]
    if kind == "categorical":
        return [str(v) for v in values]
    return [float(v) for v in np.asarray(values, dtype=float)]


def decode_classes(classes: Any, kind: ColumnKind) -> list[Any]:
    """A classifier's classes, as ``decode_values`` turns values back to JSON."""
    return decode_values(np.asarray(classes, dtype=object), kind)

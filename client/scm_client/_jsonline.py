"""One message as one line of strict JSON, with binary columns' base64 spliced in as bytes.

``json.dumps`` scans and copies every character of a string, and the line is copied
again to bytes: for 100,000 rows × 20 nodes of base64 (21 MB) that was 0.08 s of a fit's
protocol time, ten times that at a million rows. A binary column's base64 is ASCII with
nothing to escape, so it travels as ``AsciiText`` (bytes) and goes into the line as it
is; the rest of the message is encoded as before, NaN and Infinity refused.
"""

from __future__ import annotations

import json
import uuid
from typing import Any


class AsciiText:
    """A JSON string's characters that need no escaping (base64), kept as bytes."""

    __slots__ = ("chars",)

    def __init__(self, chars: bytes) -> None:
        self.chars = chars

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsciiText) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"AsciiText({len(self.chars)} bytes)"


def encode_line(message: Any) -> bytes:
    """One strict-JSON line; each AsciiText is written between quotes as it is.

    The encoder writes a placeholder string for each AsciiText (a fresh random token, so
    no other string can look like it), in the order the pieces appear in the text.
    """
    pieces: list[bytes] = []
    token = ""  # made at the first AsciiText: most lines have none

    def placeholder(obj: Any) -> str:
        nonlocal token
        if not isinstance(obj, AsciiText):
            raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
        token = token or f"\0{uuid.uuid4().hex}\0"
        pieces.append(obj.chars)
        return token

    text = json.dumps(message, allow_nan=False, separators=(",", ":"), default=placeholder)
    if not pieces:
        return (text + "\n").encode("ascii")
    parts = text.split(json.dumps(token))
    assert len(parts) == len(pieces) + 1, "a placeholder token appeared in the message"
    line = [parts[0].encode("ascii")]
    for piece, part in zip(pieces, parts[1:], strict=True):
        line += [b'"', piece, b'"', part.encode("ascii")]
    line.append(b"\n")
    return b"".join(line)

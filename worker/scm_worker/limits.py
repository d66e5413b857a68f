"""Request-size limits: the bottom layer, read by the checks and set by the worker's flags."""

from __future__ import annotations

from dataclasses import dataclass

#: the read buffer of a session's input stream: a request line can be tens of megabytes
#: (binary traces), which io's default 8 KiB buffer takes in thousands of reads
READ_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Request-size limits; each is a worker flag and each breach is error -32004."""

    max_line_bytes: int = 256 * 1024 * 1024
    max_rows: int = 1_000_000
    max_nodes: int = 1_000
    max_edges: int = 20_000
    max_cells: int = 20_000_000
    max_num_samples: int = 1_000_000
    max_models: int = 64
    max_memory_mb: int = 4096

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

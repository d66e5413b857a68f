"""Request-size and queue limits: the bottom layer, read by the checks, the scheduler and
the sessions, and set by the worker's flags."""

from __future__ import annotations

from dataclasses import dataclass

#: the read buffer of a session's input stream: a request line can be tens of megabytes
#: (binary traces), which io's default 8 KiB buffer takes in thousands of reads
READ_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Request-size and queue limits; each is a worker flag and each breach is error -32004
    (except ``max_outbox_bytes``: a session whose replies pile up past it is dropped)."""

    max_line_bytes: int = 256 * 1024 * 1024
    max_rows: int = 1_000_000
    max_nodes: int = 1_000
    max_edges: int = 20_000
    max_cells: int = 20_000_000
    max_num_samples: int = 1_000_000
    max_models: int = 64
    max_memory_mb: int = 4096
    #: per session: requests waiting for the compute thread, and their line bytes
    max_queued_requests: int = 256
    max_queued_bytes: int = 512 * 1024 * 1024
    #: every session's waiting and running requests' line bytes together
    max_inflight_bytes: int = 1024 * 1024 * 1024
    #: per session: replies waiting behind the one being written to a peer that reads slowly
    max_outbox_bytes: int = 256 * 1024 * 1024

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

"""Which Dask scheduler addresses ``batch.fit`` accepts, and with which security.

Dask moves pickles: whoever answers at the scheduler's address can run code in the
gateway. So the address says how the peer is known. ``tls://`` proves it by the
certificate the user's CA signed (``tls_ca_file``, ``tls_cert``, ``tls_key``, or Dask's
own ``distributed.comm.tls`` configuration). Plain ``tcp://`` proves nothing: it is
taken on loopback, and off this machine only with an explicit ``insecure: true``, as
ssh asks before trusting an unknown host. Pure Python, checked at the boundary before
``distributed`` is imported; dask_link.py builds the connection from the result.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import invalid_params

SCHEMES: Final = ("tcp", "tls")
DEFAULT_PORT: Final = 8786
TLS_FIELDS: Final = ("tls_ca_file", "tls_cert", "tls_key")


@dataclass(frozen=True)
class SchedulerAddress:
    scheme: str
    host: str
    port: int

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        """127.0.0.0/8, ::1 or ``localhost``: a name is not resolved (DNS could lie)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse(value: str, field: str = "scheduler") -> SchedulerAddress:
    """``tcp://host:port``, ``tls://host:port`` or ``host:port`` (tcp, Dask's default)."""
    text = value if "://" in value else f"tcp://{value}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise invalid_params(field, f"not a Dask scheduler address: {exc}") from exc
    if parts.scheme not in SCHEMES:
        raise invalid_params(field, f"scheme {parts.scheme!r} is not supported: use tcp:// or "
                                    "tls:// (e.g. 'tls://host:8786')")
    if not parts.hostname or parts.path or parts.query:
        raise invalid_params(field, f"not a Dask scheduler address: {value!r} "
                                    "(expected e.g. 'tls://host:8786')")
    return SchedulerAddress(parts.scheme, parts.hostname, port or DEFAULT_PORT)


def tls_file(value: Any, field: str) -> str | None:
    """``null``, or the absolute path of a readable regular file (the PEM is Dask's to parse).

    Absolute: a daemon does not share its caller's working directory.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise invalid_params(field, "must be null or the absolute path of a PEM file")
    if not os.path.isabs(value):
        raise invalid_params(field, f"must be an absolute path (the worker does not share "
                                    f"your working directory), got {value!r}")
    try:
        if not stat.S_ISREG(os.stat(value).st_mode):
            raise invalid_params(field, f"{value} is not a regular file")
        with open(value, "rb"):
            pass
    except OSError as exc:
        raise invalid_params(field, f"cannot read {value}: {exc.strerror}") from exc
    return value


def check(params: dict[str, Any]) -> dict[str, Any]:
    """``batch.fit``'s scheduler, ``insecure`` and ``tls_*`` together; the address normalised."""
    address = parse(params["scheduler"])
    given = [name for name in TLS_FIELDS if params[name] is not None]
    if address.scheme == "tcp":
        if given:
            raise invalid_params(given[0], f"TLS files need a tls:// scheduler, not plain tcp: "
                                           f"use tls://{address.uri.removeprefix('tcp://')}")
        if not address.loopback and not params["insecure"]:
            raise invalid_params("insecure", _insecure_reason(address))
    elif given:
        missing = [name for name in ("tls_ca_file", "tls_cert") if name not in given]
        if missing:
            raise invalid_params(missing[0], f"required with {', '.join(given)}: the cluster's "
                                             "CA file and this client's certificate go together")
    return {**params, "scheduler": address.uri}


def _insecure_reason(address: SchedulerAddress) -> str:
    return (f"{address.uri} is plain TCP off this machine: nothing proves who answers, and "
            "Dask's replies are pickles that run code here. Use tls:// with tls_ca_file, "
            "tls_cert and tls_key (scm batch --tls-ca-file/--tls-cert/--tls-key), or pass "
            "insecure: true (scm batch --insecure) on a network you trust")

"""How the gateway reaches a Dask scheduler: Dask's ``Security``, a probe that unpickles nothing.

Dask's own ``comm.connect`` unpickles whatever the peer sends, even its handshake and
even with ``deserialize=False`` (a ``__Pickled__`` frame is always loaded), so the
gateway must not use it on an address before the peer is known to be the scheduler
the user named. The probe speaks Dask's framing on a plain socket (TLS-wrapped with the
same ``ssl_context`` Dask would use, so a ``tls://`` peer is verified against the
user's CA before a byte is read), sends the handshake and an ``identity`` request, and
decodes the replies with bare msgpack: no object hook, no ext hook, no pickle. Only a
peer whose handshake is Dask's and who says it is a ``Scheduler`` gets a
``distributed.Client``, with the same connection args.

On ``tcp://`` the probe is all there is to know: the address is then trusted by where
it is (loopback) or because the user said ``insecure: true`` (dask_address.py).
"""

from __future__ import annotations

import pickle
import socket
import ssl
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any, Final

from ..errors import CLUSTER_UNAVAILABLE, WorkerError, invalid_params
from .dask_address import SchedulerAddress

#: the handshake and the identity reply (asked with ``n_workers=0``) are a few hundred
#: bytes; anything bigger is not a scheduler answering them
MAX_REPLY: Final = 1 << 20
_WORD: Final = struct.Struct("<Q")


@dataclass(frozen=True)
class Link:
    """The address, Dask's ``Security`` for it and its client connection args."""

    address: SchedulerAddress
    security: Any
    ssl_context: ssl.SSLContext | None


def link(address: SchedulerAddress, files: dict[str, str | None]) -> Link:
    """Dask's ``Security`` for ``address``: the explicit ``tls_*`` files, else Dask's config."""
    from distributed.security import Security

    if address.scheme == "tcp":
        security = Security()
        if security.require_encryption:
            raise invalid_params("scheduler", f"Dask's configuration requires encryption "
                                              f"(distributed.comm.require-encryption): use "
                                              f"tls://{address.uri.removeprefix('tcp://')}")
        return Link(address, security, None)
    explicit = {key: value for key, value in (("tls_ca_file", files["tls_ca_file"]),
                                              ("tls_client_cert", files["tls_cert"]),
                                              ("tls_client_key", files["tls_key"])) if value}
    if explicit:
        _load_ca(str(explicit["tls_ca_file"]))
    security = Security(require_encryption=True, **explicit)
    try:
        context = security.get_connection_args("client")["ssl_context"]
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise invalid_params("tls_cert", f"Dask cannot load the client certificate and key: {exc}"
                             ) from exc
    if context is None:
        raise invalid_params("tls_ca_file", _no_certificates(address))
    return Link(address, security, context)


def _load_ca(path: str) -> None:
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise invalid_params("tls_ca_file", f"{path} is not a PEM CA certificate ({exc})") from exc


def _no_certificates(address: SchedulerAddress) -> str:
    return (f"{address.uri} needs the cluster's CA and a client certificate: give tls_ca_file, "
            "tls_cert and tls_key (scm batch --tls-ca-file/--tls-cert/--tls-key), or set Dask's "
            "distributed.comm.tls.ca-file and distributed.comm.tls.client.cert/.key "
            "(e.g. DASK_DISTRIBUTED__COMM__TLS__CA_FILE)")


def require_scheduler(to: Link, timeout: float) -> dict[str, Any]:
    """The scheduler's identity, or -32008 naming the address; nothing received is unpickled.

    Connecting is retried for ``timeout`` seconds (a refused connection fails fast each
    time); a peer that accepts and then goes silent ends at twice that.
    """
    uri = to.address.uri
    deadline = time.monotonic() + 2 * timeout
    try:
        with _open(to, timeout) as sock:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            _send(sock, {"compression": None, "python": list(sys.version_info[:3]),
                         "pickle-protocol": pickle.HIGHEST_PROTOCOL})
            _send(sock, {"op": "identity", "n_workers": 0, "reply": True})
            hello = _receive(sock, uri)
            info = _receive(sock, uri) if _is_handshake(hello) else None
    except ssl.SSLError as exc:
        raise unavailable(uri, f"the TLS handshake with {uri} failed ({exc.reason or exc}): "
                               "is tls_ca_file the CA that signed the scheduler's certificate, "
                               "and does the scheduler trust tls_cert?", "tls") from exc
    except TimeoutError as exc:
        raise unavailable(uri, f"{uri} accepted a connection but did not answer as a Dask "
                               f"scheduler within {timeout:g} s", "no_answer") from exc
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        said = (f"it says it is {info.get('type')!r}" if isinstance(info, dict)
                else "it does not answer in Dask's protocol")
        raise unavailable(uri, f"{uri} is not a Dask scheduler ({said})", "not_a_scheduler")
    return info


def cluster_unavailable(address: str, message: str, reason: str, **details: Any) -> WorkerError:
    """-32008: the batch (or an item) cannot run on the cluster at ``address``."""
    return WorkerError(
        CLUSTER_UNAVAILABLE, message, {"scheduler": address, "reason": reason, **details}
    )


def unavailable(uri: str, message: str, reason: str) -> WorkerError:
    return cluster_unavailable(uri, f"Cluster unavailable: {message}", reason)


def _open(to: Link, timeout: float) -> socket.socket:
    """A connected (for tls://, verified) socket; refused connections retried until ``timeout``."""
    host, port = to.address.host, to.address.port
    deadline = time.monotonic() + timeout
    backoff = 0.05
    while True:
        left = deadline - time.monotonic()
        try:
            sock = socket.create_connection((host, port), timeout=max(0.1, left))
        except TimeoutError:
            raise OSError(f"no connection to {host}:{port} within {timeout:g} s") from None
        except OSError:
            if left <= backoff:
                raise
            time.sleep(backoff)  # a scheduler may be starting: retry, as Dask's connect does
            backoff = min(1.0, 2 * backoff)
            continue
        if to.ssl_context is None:
            return sock
        try:
            return to.ssl_context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    """One Dask message of one msgpack frame: total length, frame count, frame length, frame."""
    import msgpack

    frame = msgpack.packb(message, use_bin_type=True)
    body = _WORD.pack(1) + _WORD.pack(len(frame)) + frame
    sock.sendall(_WORD.pack(len(body)) + body)


def _receive(sock: socket.socket, uri: str) -> Any:
    """One Dask message's first frame, decoded by bare msgpack (ext types stay opaque)."""
    import msgpack

    (size,) = _WORD.unpack(_read(sock, _WORD.size))
    if not _WORD.size <= size <= MAX_REPLY:
        return None
    body = _read(sock, size)
    (count,) = _WORD.unpack_from(body)
    if count < 1 or _WORD.size * (1 + count) > size:
        return None
    lengths = struct.unpack_from(f"<{count}Q", body, _WORD.size)
    start = _WORD.size * (1 + count)
    if start + sum(lengths) != size:
        return None  # frames outside this read: payloads a handshake or identity never has
    try:
        return msgpack.unpackb(body[start:start + lengths[0]], raw=False, strict_map_key=False)
    except ValueError:  # msgpack's format, depth and extra-data errors
        return None


def _read(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 16))
        if not chunk:
            raise ConnectionResetError("the peer closed the connection")
        chunks += chunk
    return bytes(chunks)


def _is_handshake(message: Any) -> bool:
    return isinstance(message, dict) and "pickle-protocol" in message and "compression" in message

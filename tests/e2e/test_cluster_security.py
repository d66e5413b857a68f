"""``batch.fit`` on a secured Dask cluster, and the addresses it refuses.

A real TLS cluster on 127.0.0.1 (scheduler and worker from the worker interpreter, with
certificates made here by ``openssl``) runs batches through the real gateway worker:
with the files on ``scm batch``'s command line, and with Dask's own configuration. A
tls:// address without certificates, or with a CA that did not sign the scheduler, is a
clear error; plain tcp:// off loopback needs ``insecure``; and a rogue listener that
answers with a pickle runs nothing in the gateway.
"""

from __future__ import annotations

import json
import pickle
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scm_client import ClusterUnavailable, InvalidParams, Worker
from support.certs import Pair, make_ca, make_leaf
from support.dask_cluster import START_TIMEOUT, DaskCluster

TLS_CONFIG = "DASK_DISTRIBUTED__COMM__TLS__"


def chain_request(seed: int, rows: int = 300) -> dict[str, Any]:
    """x → y → z, linear-Gaussian, seeded."""
    rng = random.Random(seed)
    x = [rng.gauss(0, 1) for _ in range(rows)]
    y = [2 * v + rng.gauss(0, 1) for v in x]
    z = [-v + rng.gauss(0, 1) for v in y]
    return {"graph": {"nodes": ["x", "y", "z"], "edges": [["x", "y"], ["y", "z"]]},
            "traces": {"x": x, "y": y, "z": z},
            "config": {"seed": seed, "validate_r2": False, "cache": False}}


class Certificates:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = make_ca(directory)
        self.node = make_leaf(self.ca, directory, "node")  # the scheduler's and the worker's
        self.client = make_leaf(self.ca, directory, "client")
        self.other_ca = make_ca(directory, "other-ca")  # signed none of them

    def cluster_env(self) -> dict[str, str]:
        """Dask's configuration for the scheduler and worker processes: TLS only."""
        return {f"{TLS_CONFIG}CA_FILE": str(self.ca.cert),
                f"{TLS_CONFIG}SCHEDULER__CERT": str(self.node.cert),
                f"{TLS_CONFIG}SCHEDULER__KEY": str(self.node.key),
                f"{TLS_CONFIG}WORKER__CERT": str(self.node.cert),
                f"{TLS_CONFIG}WORKER__KEY": str(self.node.key),
                **self.client_env(self.client),
                "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"}

    def client_env(self, client: Pair) -> dict[str, str]:
        return {f"{TLS_CONFIG}CA_FILE": str(self.ca.cert), f"{TLS_CONFIG}CLIENT__CERT": str(client.cert),
                f"{TLS_CONFIG}CLIENT__KEY": str(client.key)}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_cluster(worker_python: str, certificates: Certificates,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    cluster = DaskCluster(worker_python, tmp_path_factory.mktemp("dask-tls"), protocol="tls",
                          env=certificates.cluster_env())
    try:
        cluster.start(1)
        yield cluster
    finally:
        cluster.stop()


def test_scm_batch_runs_on_a_tls_cluster_with_the_certificates_it_is_given(
    tls_cluster: DaskCluster, certificates: Certificates, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        (folder / f"req{i}.json").write_text(json.dumps(chain_request(30 + i)))
    out = tmp_path / "results.jsonl"
    # relative paths, from the certificates' folder: the client makes them absolute for the worker
    done = subprocess.run([sys.executable, "-m", "scm_client.cli", "batch", str(folder),
                           "--scheduler", tls_cluster.address, "--out", str(out),
                           "--tls-ca-file", certificates.ca.cert.name,
                           "--tls-cert", certificates.client.cert.name,
                           "--tls-key", certificates.client.key.name],
                          cwd=certificates.directory, check=False, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["ok"] for line in lines] == [True, True], lines
    assert all(line["result"]["metadata"]["dask_worker"].startswith("tls://127.0.0.1:") for line in lines)


def test_a_tls_cluster_runs_a_batch_with_dask_s_own_tls_configuration(
    tls_cluster: DaskCluster, certificates: Certificates, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker(env=certificates.client_env(certificates.client))
    reply = worker.call("batch.fit", {"requests": [chain_request(40)], "scheduler": tls_cluster.address,
                                      "connect_timeout": 30}, timeout=None)
    [item] = reply["items"]
    assert "result" in item, item
    assert item["result"]["metadata"]["dask_worker"].startswith("tls://127.0.0.1:")
    assert reply["metadata"]["scheduler"] == tls_cluster.address


def test_a_tls_scheduler_without_its_certificates_is_a_clear_error(
    tls_cluster: DaskCluster, certificates: Certificates, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker()  # no Dask TLS configuration in its environment
    request = {"requests": [chain_request(1)], "scheduler": tls_cluster.address, "connect_timeout": 10}
    started = time.monotonic()
    with pytest.raises(InvalidParams) as refused:
        worker.call("batch.fit", request)
    assert refused.value.field == "tls_ca_file"
    assert "--tls-ca-file" in refused.value.message and tls_cluster.address in refused.value.message
    wrong_ca = {"tls_ca_file": str(certificates.other_ca.cert), "tls_cert": str(certificates.client.cert),
                "tls_key": str(certificates.client.key)}
    with pytest.raises(ClusterUnavailable) as untrusted:
        worker.call("batch.fit", {**request, **wrong_ca})
    assert untrusted.value.reason == "tls" and tls_cluster.address in untrusted.value.message
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.value.message
    assert time.monotonic() - started < 60


def test_plain_tcp_off_this_machine_needs_insecure_and_tls_files_are_checked(
    make_worker: Callable[..., Worker], certificates: Certificates
) -> None:
    worker = make_worker()
    remote = "tcp://192.0.2.1:8786"  # TEST-NET-1: routed nowhere
    base = {"requests": [chain_request(1)], "connect_timeout": 1}
    with pytest.raises(InvalidParams) as refused:
        worker.call("batch.fit", {**base, "scheduler": remote})
    assert refused.value.field == "insecure"
    assert "insecure: true" in refused.value.message and "--tls-ca-file" in refused.value.message
    with pytest.raises(ClusterUnavailable) as unreachable:  # allowed now: it is only not there
        worker.call("batch.fit", {**base, "scheduler": remote, "insecure": True})
    assert unreachable.value.reason == "unreachable"
    tls = "tls://127.0.0.1:8786"
    missing = str(certificates.directory / "missing.pem")
    for params, field in (({"scheduler": "tcp://127.0.0.1:8786", "tls_ca_file": str(certificates.ca.cert)},
                           "tls_ca_file"),
                          ({"scheduler": tls, "tls_ca_file": str(certificates.ca.cert), "tls_cert": "client.pem"},
                           "tls_cert"),
                          ({"scheduler": tls, "tls_ca_file": str(certificates.ca.cert), "tls_cert": missing},
                           "tls_cert"),
                          ({"scheduler": tls, "tls_cert": str(certificates.client.cert)}, "tls_ca_file"),
                          ({"scheduler": "ws://127.0.0.1:8786"}, "scheduler")):
        with pytest.raises(InvalidParams) as bad:
            worker.call("batch.fit", {**base, **params})
        assert bad.value.field == field, (params, bad.value.message)


# -- a rogue listener ---------------------------------------------------------------------


def _msgpack_str(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 32
    return bytes([0xA0 | len(data)]) + data


def pickle_bomb_message(marker: Path) -> bytes:
    """A Dask-framed message whose second frame is a pickle that creates ``marker``.

    Dask's ``protocol.loads`` reads ``{"__Pickled__": 1}`` in the first frame as "unpickle
    frame 1", whatever ``deserialize`` says. msgpack is written by hand: the client has none.
    """

    class Touch:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    payload = pickle.dumps(Touch(), protocol=4)
    head = b"\x81" + _msgpack_str("__Pickled__") + b"\x01"
    sub = (b"\x82" + _msgpack_str("pickled-obj") + b"\xc5" + struct.pack(">H", len(payload)) + payload
           + _msgpack_str("num-sub-frames") + b"\x00")
    body = struct.pack("<3Q", 2, len(head), len(sub)) + head + sub
    return struct.pack("<Q", len(body)) + body


class RogueListener:
    """Answers every connection on 127.0.0.1 with ``message``, then waits for the peer to go."""

    def __init__(self, message: bytes) -> None:
        self.message = message
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                peer, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(peer,), daemon=True).start()

    def _answer(self, peer: socket.socket) -> None:
        with peer:
            peer.settimeout(30)
            try:
                peer.sendall(self.message)
                while peer.recv(65536):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        self.server.close()


def test_a_rogue_listener_answering_with_a_pickle_runs_nothing_in_the_gateway(
    make_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    rogue = RogueListener(pickle_bomb_message(marker))
    try:
        worker = make_worker()
        with pytest.raises(ClusterUnavailable) as refused:
            worker.call("batch.fit", {"requests": [chain_request(1)], "scheduler": rogue.address,
                                      "connect_timeout": 5})
    finally:
        rogue.close()
    assert rogue.connections >= 1  # the gateway did talk to it
    assert not marker.exists(), "the gateway unpickled what the rogue listener sent"
    assert refused.value.reason == "not_a_scheduler" and rogue.address in refused.value.message


def test_the_pickle_bomb_is_live(worker_python: str, tmp_path: Path) -> None:
    """The rogue's message does run code when Dask's own comm reads it: the test above can fail."""
    marker = tmp_path / "unpickled"
    rogue = RogueListener(pickle_bomb_message(marker))
    probe = ("import asyncio, sys\nfrom distributed.comm import connect\n"
             "async def main():\n    try:\n        await connect(sys.argv[1], timeout=5)\n"
             "    except Exception:\n        pass\nasyncio.run(main())\n")
    try:
        subprocess.run([worker_python, "-c", probe, rogue.address], check=False, capture_output=True,
                       timeout=START_TIMEOUT)
    finally:
        rogue.close()
    assert marker.exists()

"""One client process of case 7's shared-daemon measure: fits and samples on the daemon.

    python benchmarks/daemon_client.py --first K --count N --model MODEL_ID

Run by the client interpreter with SCM_DAEMON_DIR naming the daemon. Request k (from K to
K+N-1) is a seeded fit of the chain (cache off) when k is even, else a seeded
interventional sample of MODEL_ID; each answer's digest is printed with the wall time,
so the driver can check that every reply is the one a single process gets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
from common import FIT_CONFIG
from scm_client import Worker

DO_X = [{"type": "hard", "node": "X", "value": 1.0}]


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def request(worker: Worker, k: int, model_id: str, chain: dict) -> str:
    """Request ``k``: its answer's digest (what must not depend on who else is served)."""
    if k % 2 == 0:
        fitted = worker.fit(chain["graph"], chain["traces"], seed=k, cache=False, **FIT_CONFIG)
        return digest([fitted.scm, fitted.validation])
    drawn = worker.sample(model_id, "interventional", DO_X, num_samples=500, seed=k)
    return digest(drawn.samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    chain = datagen.case_data("chain")
    with Worker.connect() as worker:
        worker.ping()
        started = time.perf_counter()
        digests = {k: request(worker, k, args.model, chain)
                   for k in range(args.first, args.first + args.count)}
        wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "digests": digests}))


if __name__ == "__main__":
    main()

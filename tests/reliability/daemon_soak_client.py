"""One client process of the daemon soak: mixed requests on the shared daemon, its own tally.

    python daemon_soak_client.py --spec spec.json --name NAME --seed S --requests N --until PATH --out out.json

Run by the 3.13 client with SCM_DAEMON_DIR naming the soak's daemon. Each request is
checked by the threaded soak's own ``Soak.normal`` (test_soak.py), against references
the parent drew before any fault. A ``WorkerCrashed`` means the daemon died under the
call: its time and the pid of the daemon that died (the one this client's last handshake
named) are recorded, and the same request is sent again, and must then be answered (the
next call starts a new daemon). Anything else that is not the request's
own answer is *lost*. It sends at least ``--requests`` and goes on until ``--until``
exists (the parent creates it once every fault is made, so no fault waits on a client
that already finished however slowly the parent polls), or until its parent is gone.
The tally, with the number sent, is written to ``--out`` at the end, so a client that is
itself killed leaves none.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scm_client import Worker, WorkerCrashed, WorkerError  # noqa: E402
from test_soak import CALL_TIMEOUT, Soak  # noqa: E402

RETRIES = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--spec", "--name", "--out", "--until"):
        parser.add_argument(name, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    args = parser.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    worker = Worker.connect(spec["python"], store=spec["store"], worker_args=("--test-methods",),
                            max_restarts=20, request_timeout=CALL_TIMEOUT)
    soak = Soak(worker, spec["model"], args.seed)
    soak.reference = {("sample", int(key)): value for key, value in spec["samples"].items()}
    rng = random.Random(args.seed)
    tally = {"name": args.name, "served": 0, "lost": [], "crashes": [], "retried": 0,
             "kinds": {}, "daemon_pids": []}
    parent, until = os.getppid(), Path(args.until)
    for k in itertools.count():
        if k >= args.requests and (until.exists() or os.getppid() != parent):
            tally["sent"] = k
            break
        kind = rng.choice(Soak.MIX)
        one_request(soak, worker, k, kind, tally)
    worker.close()
    Path(args.out).write_text(json.dumps(tally))


def one_request(soak: Soak, worker: Worker, k: int, kind: str, tally: dict) -> None:
    """Send request ``k``; on WorkerCrashed, note when and send it again (bounded)."""
    for attempt in range(RETRIES + 1):
        try:
            problem = soak.normal(k, kind)
        except WorkerCrashed as exc:
            # the daemon it was on: the link's peer, known even when the daemon died under the
            # handshake of this client's first call (``info`` is then empty, or a dead one's)
            tally["crashes"].append({"at": time.time(), "k": k, "kind": kind,
                                     "daemon": worker.pid, "error": str(exc).splitlines()[0]})
            if attempt < RETRIES:
                tally["retried"] += 1
                continue
            problem = f"still crashing after {RETRIES} retries"
        except WorkerError as exc:
            problem = f"{exc!r}"
        except Exception as exc:  # noqa: BLE001 - not a WorkerError: lost
            problem = f"{exc!r}"
        break
    if problem is None:
        tally["served"] += 1
        tally["kinds"][kind] = tally["kinds"].get(kind, 0) + 1
        pid = worker.info.get("pid")
        if pid is not None and pid not in tally["daemon_pids"]:
            tally["daemon_pids"].append(pid)
    else:
        tally["lost"].append(f"{kind} {k}: {problem}")


if __name__ == "__main__":
    main()

"""The old design, for comparison: one process per request. Run by the WORKER interpreter.

    python benchmarks/process_per_call.py < request.json > result.json

Reads one fit request (``{"graph", "traces", "config"}``, the wire shape) from stdin,
imports DoWhy, fits it, prints the result as JSON on stdout and exits. It does the
same work as a worker fit (seeded split, ``assign_causal_mechanisms`` with quality
GOOD and ``fit`` on the training rows, held-out R², refit on all rows) with no
dependency on scm_worker, so every call pays the interpreter start, the imports and
joblib's process start, which is what the persistent worker avoids.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> int:
    started = time.perf_counter()
    request = json.load(sys.stdin)

    import networkx as nx
    import numpy as np
    import pandas as pd
    from dowhy import gcm

    gcm.config.disable_progress_bars()
    config = request.get("config") or {}
    seed = int(config.get("seed", 0))
    test_size = float(config.get("test_size", 0.2))
    quality = getattr(gcm.auto.AssignmentQuality, config.get("quality", "GOOD"))

    graph = nx.DiGraph()
    graph.add_nodes_from(request["graph"]["nodes"])
    graph.add_edges_from(request["graph"]["edges"])
    data = pd.DataFrame(
        {name: np.asarray(values, dtype=float) for name, values in request["traces"].items()}
    )
    n_val = int(np.ceil(len(data) * test_size))
    order = np.random.RandomState(seed).permutation(len(data))
    train, val = data.iloc[order[n_val:]], data.iloc[order[:n_val]]

    gcm.util.general.set_random_seed(seed)
    scm = gcm.InvertibleStructuralCausalModel(graph)
    gcm.auto.assign_causal_mechanisms(scm, train, quality)
    gcm.fit(scm, train)
    r2 = {}
    for node in graph.nodes:
        parents = list(graph.predecessors(node))
        if not parents:
            continue
        parents = [p for p in scm.graph.nodes if p in parents]  # DoWhy's parent order
        mechanism = scm.causal_mechanism(node)
        x = val[parents].to_numpy()
        predicted = np.ravel(mechanism.evaluate(x, np.zeros((len(x), 1))))
        actual = val[node].to_numpy()
        ss_tot = float(np.sum((actual - actual.mean()) ** 2))
        r2[node] = 1.0 - float(np.sum((actual - predicted) ** 2)) / ss_tot if ss_tot else 0.0
    gcm.util.general.set_random_seed(seed)
    gcm.fit(scm, data)

    result = {
        "mechanisms": {node: type(scm.causal_mechanism(node)).__name__ for node in graph.nodes},
        "r2_scores": r2,
        "mean_r2": sum(r2.values()) / len(r2) if r2 else None,
        "fitting_time_ms": int((time.perf_counter() - started) * 1000),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

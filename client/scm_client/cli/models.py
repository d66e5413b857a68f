"""`scm models`: list, drop and prune the models in the worker's persistent store."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .. import _format
from .common import add_command, add_global_options_to_actions, open_worker


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "models", run,
                         "list, drop or prune the models in the worker's store")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="every stored model, where it lives and its size")
    drop = actions.add_parser("drop", help="delete models by id, in memory and on disk")
    drop.add_argument("model_ids", nargs="+", metavar="MODEL_ID")
    prune = actions.add_parser("prune", help="delete persisted models by age and/or down to a size")
    prune.add_argument("--older-than", type=float, metavar="DAYS",
                       help="delete models older than this")
    prune.add_argument("--max-size", type=float, metavar="MB",
                       help="then delete oldest first down to this total")
    parser.add_argument("--store", metavar="DIR",
                        help="the store directory (default: the worker's default)")
    add_global_options_to_actions(actions)


def run(args: argparse.Namespace) -> int:
    with open_worker(args, warm_up=False, store=args.store) as worker:
        if args.action == "drop":
            for model_id in args.model_ids:
                worker.drop(model_id)
                print(f"dropped {model_id}")
            return 0
        if args.action == "prune":
            if args.older_than is None and args.max_size is None:
                print("scm models prune: give --older-than DAYS and/or --max-size MB")
                return 2
            older = None if args.older_than is None else args.older_than * 86400
            pruned = worker.prune(older_than_s=older, max_total_mb=args.max_size)
            print(f"pruned {len(pruned)} models" + "".join(f"\n  {m}" for m in pruned))
            return 0
        listing = worker.call("models.list")
        print(models_table(listing))
        return 0


def models_table(listing: dict[str, Any]) -> str:
    now = time.time()
    rows = [[m["model_id"], m.get("where", "?"), ", ".join(m.get("nodes", []))[:40],
             m.get("num_samples", "—"), _format.num(m.get("mean_r2"), 3),
             f"{m.get('size_bytes', 0) / 1024:.0f} KiB",
             age(now - m["created_at"]) if m.get("created_at") else "—"]
            for m in listing["models"]]
    store = listing.get("store_dir") or "(none: --no-store)"
    header = f"store: {store} · {listing.get('models_on_disk', 0)} on disk"
    if not rows:
        return header + "\nno models"
    columns = ["model", "where", "nodes", "rows", "mean R²", "size", "age"]
    return header + "\n" + _format.table(columns, rows)


def age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"

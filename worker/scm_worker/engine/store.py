"""Fitted models by id: memory (LRU within a count and byte budget), disk, and the fit cache.

Ids are made here (``m-`` + 16 hex digits) and checked against that pattern, so a
request can never name a path. A persisted model lives in the authenticated store
directory too; when memory is over budget the least recently used model leaves memory
and, if persisted, is reloaded (after HMAC verification) on its next use. The fit cache
maps a content hash of a fit request to the model it produced; its entries are small
authenticated files beside the models, so a restarted worker still finds earlier fits.
Node keys (node_reuse.py) map the same way to the model that holds each node's fit, in
memory while that model is, and as refs when it persists: what incremental refits reuse.
"""

from __future__ import annotations

import copy
import json
import pickle
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks import MODEL_ID, check_model_id
from ..errors import MODEL_NOT_FOUND, WorkerError, invalid_params
from .persistence import ModelFiles, atomic_write

if TYPE_CHECKING:
    from .fitting import FittedModel
    from .node_reuse import NodeRecord

CACHE_KEY = re.compile(r"^[0-9a-f]{64}$")
_EVICTED_MEMORY = 10_000


def new_model_id() -> str:
    return "m-" + secrets.token_hex(8)


@dataclass
class Entry:
    model: FittedModel
    size_bytes: int


class ModelStore:
    def __init__(
        self, max_models: int, max_memory_bytes: int | None = None, directory: Path | None = None
    ) -> None:
        self.max_models = max_models
        self.max_memory_bytes = max_memory_bytes
        self.files = ModelFiles(directory) if directory is not None else None
        self._memory: OrderedDict[str, Entry] = OrderedDict()
        self._evicted: OrderedDict[str, None] = OrderedDict()
        self._cache: dict[str, str] = {}
        self._nodes: dict[str, str] = {}  # node key (node_reuse.py) → the model that holds it

    # -- adding and finding ---------------------------------------------------------
    def add(self, model: FittedModel, persist: bool = False, cache_key: str | None = None) -> str:
        model_id = new_model_id()
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        self._memory[model_id] = Entry(model, len(payload))
        if persist:
            self._persist(model_id, model, payload)
        if cache_key is not None:
            self._remember(cache_key, model_id, persist)
        self._nodes.update(dict.fromkeys(node_keys(model), model_id))
        self._enforce_budget(keep=model_id)
        return model_id

    def get(self, model_id: Any) -> FittedModel:
        model_id = check_model_id(model_id)
        entry = self._memory.get(model_id)
        if entry is None:
            return self.load(model_id)
        self._memory.move_to_end(model_id)
        return entry.model

    def load(self, model_id: Any) -> FittedModel:
        """Bring a persisted model into memory (verifying it first)."""
        model_id = check_model_id(model_id)
        if model_id in self._memory:
            return self._memory[model_id].model
        if self.files is None or not self.files.exists(model_id):
            raise self._not_found(model_id)
        model: FittedModel = self.files.read(model_id)
        self._memory[model_id] = Entry(model, self.files.stat(model_id).st_size)
        self._enforce_budget(keep=model_id)
        return model

    def save(self, model_id: Any) -> dict[str, Any]:
        model = self.get(model_id)
        if self.files is None:  # before pickling: refused at once
            raise invalid_params(
                "model_id", "this worker runs without a store (--no-store); nothing can be saved"
            )
        return self._persist(model_id, model, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))

    def _persist(self, model_id: str, model: FittedModel, payload: bytes) -> dict[str, Any]:
        """The model file (authenticated) and its JSON sidecar, which models.list reads.

        Callers refuse a store-less worker first (``save`` here, ``fit``'s and ``batch.fit``'s
        config checks before any work).
        """
        assert self.files is not None
        size = self.files.write_payload(model_id, payload)
        for key in node_keys(model):  # after the model: a ref never names a missing file
            self.files.write_ref(key, model_id, kind="node")
        atomic_write(self._sidecar(model_id), json.dumps(describe(model_id, model)).encode())
        return {"model_id": model_id, "persisted": True, "size_bytes": size}

    def _delete_files(self, model_id: str) -> bool:
        """The model file and its sidecar; whether there was a model file."""
        if self.files is None:
            return False
        self._sidecar(model_id).unlink(missing_ok=True)
        return self.files.delete(model_id)

    def drop(self, model_id: Any) -> dict[str, Any]:
        model_id = check_model_id(model_id)
        in_memory = self._memory.pop(model_id, None) is not None
        on_disk = self._delete_files(model_id)
        self._forget_nodes(model_id)
        if not (in_memory or on_disk):
            raise self._not_found(model_id)
        return {
            "model_id": model_id,
            "dropped": True,
            "from_memory": in_memory,
            "from_disk": on_disk,
        }

    # -- the fit cache --------------------------------------------------------------
    def cached(self, cache_key: str) -> str | None:
        """The model id an identical fit produced, if that model can still be had."""
        model_id = self._cache.get(cache_key) or self._read_ref(cache_key)
        if model_id is None:
            return None
        if model_id in self._memory or (self.files is not None and self.files.exists(model_id)):
            return model_id
        self._cache.pop(cache_key, None)
        return None

    def reusable(self, node_key: str) -> tuple[NodeRecord, Any] | None:
        """A node kept under ``node_key`` by an earlier fit: its record and a deep copy of
        its mechanism (the new model must share nothing with the old one), or None.

        The model that holds it is read as any model is (a persisted one verified first),
        and the node is taken only if that model's own record carries the key: a ref that
        points elsewhere, a refused file or a model gone finds nothing.
        """
        model_id = self._nodes.get(node_key) or self._read_ref(node_key, kind="node")
        if model_id is None:
            return None
        try:
            model = self.get(model_id)
        except WorkerError:
            self._nodes.pop(node_key, None)
            return None
        for node, record in (model.node_records or {}).items():
            if record.key == node_key:
                return record, copy.deepcopy(model.scm.causal_mechanism(node))
        return None

    def _remember(self, cache_key: str, model_id: str, persist: bool) -> None:
        self._cache[cache_key] = model_id
        if persist and self.files is not None:
            self.files.write_ref(cache_key, model_id)

    def _read_ref(self, cache_key: str, kind: str = "fit") -> str | None:
        """A persisted entry, followed only when its tag verifies (persistence.py)."""
        if self.files is None or not CACHE_KEY.fullmatch(cache_key):
            return None
        model_id = self.files.read_ref(cache_key, kind)
        return model_id if model_id is not None and MODEL_ID.fullmatch(model_id) else None

    def _sidecar(self, model_id: str) -> Path:
        assert self.files is not None
        return self.files.directory / f"{model_id}.json"

    # -- budget and reports ---------------------------------------------------------
    def memory_bytes(self) -> int:
        return sum(held_bytes(entry) for entry in self._memory.values())

    def _over_budget(self, count: int, size: int) -> bool:
        too_big = self.max_memory_bytes is not None and size > self.max_memory_bytes
        return count > self.max_models or too_big

    def rebalance(self) -> None:
        """Back within the budget after a query, keeping the model it used (the most
        recently used): the lookup tables the query built were not counted before."""
        if self._memory:
            self._enforce_budget(keep=next(reversed(self._memory)))

    def _enforce_budget(self, keep: str) -> None:
        """Evict least recently used models (never ``keep``, the one just used)."""
        held = {model_id: held_bytes(entry) for model_id, entry in self._memory.items()}
        while self._over_budget(len(held), sum(held.values())) and len(held) > 1:
            oldest = next(iter(self._memory))
            if oldest == keep:
                self._memory.move_to_end(keep)
                continue
            del self._memory[oldest], held[oldest]
            self._forget_nodes(oldest)
            self._evicted[oldest] = None
            while len(self._evicted) > _EVICTED_MEMORY:
                self._evicted.popitem(last=False)

    def _forget_nodes(self, model_id: str) -> None:
        """An evicted, dropped or pruned model's nodes leave the memory index (an evicted
        persisted model's stay findable through their refs, as the model itself is)."""
        self._nodes = {key: held for key, held in self._nodes.items() if held != model_id}

    def usage(self) -> dict[str, Any]:
        return {
            "models_in_memory": len(self._memory),
            "memory_bytes": self.memory_bytes(),
            "max_models": self.max_models,
            "max_memory_bytes": self.max_memory_bytes,
            "store_dir": str(self.files.directory) if self.files else None,
            "models_on_disk": len(self.files.ids()) if self.files else 0,
        }

    def listing(self) -> list[dict[str, Any]]:
        on_disk = set(self.files.ids()) if self.files else set()
        rows = {model_id: {**describe(model_id, e.model), "size_bytes": e.size_bytes,
                           "table_bytes": e.model.table_bytes()}
                for model_id, e in self._memory.items()}
        for model_id in on_disk - set(rows):
            rows[model_id] = self._disk_row(model_id)
        for model_id, row in rows.items():
            row["where"] = where(model_id in self._memory, model_id in on_disk)
        return sorted(rows.values(), key=lambda row: row.get("created_at") or 0)

    def _disk_row(self, model_id: str) -> dict[str, Any]:
        assert self.files is not None
        try:
            row: dict[str, Any] = json.loads(self._sidecar(model_id).read_text())
        except (OSError, ValueError):
            row = {"model_id": model_id}
        row["size_bytes"] = self.files.stat(model_id).st_size
        return row

    def prune(self, older_than_s: float | None, max_total_bytes: int | None) -> list[str]:
        """Delete persisted models: those older than the age, then oldest-first to the size."""
        if self.files is None:
            return []
        files = sorted(
            ((self.files.stat(i), i) for i in self.files.ids()), key=lambda x: x[0].st_mtime
        )
        now, pruned = time.time(), []
        total = sum(st.st_size for st, _ in files)
        for st, model_id in files:
            too_old = older_than_s is not None and now - st.st_mtime > older_than_s
            too_big = max_total_bytes is not None and total > max_total_bytes
            if too_old or too_big:
                self._delete_files(model_id)
                self._memory.pop(model_id, None)
                self._forget_nodes(model_id)
                total -= st.st_size
                pruned.append(model_id)
        return pruned

    def _not_found(self, model_id: str) -> WorkerError:
        if model_id in self._evicted:
            return WorkerError(
                MODEL_NOT_FOUND,
                f"Model {model_id} was evicted from memory and was not persisted; fit it again",
                {"model_id": model_id, "reason": "evicted"},
            )
        return WorkerError(
            MODEL_NOT_FOUND,
            f"Model {model_id} not found",
            {"model_id": model_id, "reason": "unknown"},
        )


def held_bytes(entry: Entry) -> int:
    """What a model in memory counts against the budget: its pickled size, and the lookup
    tables its queries built (predictions.py), which can be as large again."""
    return entry.size_bytes + entry.model.table_bytes()


def node_keys(model: FittedModel) -> list[str]:
    """The keys of the nodes a model keeps for reuse (none in a model from before them)."""
    return [record.key for record in (model.node_records or {}).values()]


def where(in_memory: bool, on_disk: bool) -> str:
    return "both" if in_memory and on_disk else "memory" if in_memory else "disk"


def describe(model_id: str, model: FittedModel) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "nodes": list(model.graph.nodes),
        "num_samples": model.num_samples,
        "created_at": model.created_at,
        "mean_r2": model.summary["validation"]["mean_r2"],
        "passed": model.summary["validation"]["passed"],
    }

"""Fitted models by id, in memory, least recently used first out.

Ids are made here (``m-`` + 16 hex digits) and checked against that pattern, so a
request can never name anything but a model this worker created.
"""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from .errors import MODEL_NOT_FOUND, WorkerError, invalid_params

if TYPE_CHECKING:
    from .fitting import FittedModel

MODEL_ID = re.compile(r"^m-[0-9a-f]{16}$")
_EVICTED_MEMORY = 10_000


def new_model_id() -> str:
    return "m-" + secrets.token_hex(8)


class ModelStore:
    def __init__(self, max_models: int) -> None:
        self.max_models = max_models
        self._models: OrderedDict[str, FittedModel] = OrderedDict()
        self._evicted: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._models)

    def add(self, model: FittedModel) -> str:
        model_id = new_model_id()
        self._models[model_id] = model
        while len(self._models) > self.max_models:
            old_id, _ = self._models.popitem(last=False)
            self._remember_evicted(old_id)
        return model_id

    def get(self, model_id: Any) -> FittedModel:
        if not isinstance(model_id, str) or not MODEL_ID.match(model_id):
            raise invalid_params("model_id", "not a model id (expected 'm-' and 16 hex digits)")
        model = self._models.get(model_id)
        if model is None:
            raise self._not_found(model_id)
        self._models.move_to_end(model_id)
        return model

    def drop(self, model_id: Any) -> None:
        self.get(model_id)
        del self._models[model_id]

    def items(self) -> list[tuple[str, FittedModel]]:
        return list(self._models.items())

    def _remember_evicted(self, model_id: str) -> None:
        self._evicted[model_id] = None
        while len(self._evicted) > _EVICTED_MEMORY:
            self._evicted.popitem(last=False)

    def _not_found(self, model_id: str) -> WorkerError:
        if model_id in self._evicted:
            return WorkerError(
                MODEL_NOT_FOUND,
                f"Model {model_id} was evicted from memory (max_models={self.max_models}); fit it again",
                {"model_id": model_id, "reason": "evicted"},
            )
        return WorkerError(
            MODEL_NOT_FOUND, f"Model {model_id} not found", {"model_id": model_id, "reason": "unknown"}
        )

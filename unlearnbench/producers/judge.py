"""The judge: an independent classifier that scores model inversions (MI_success).

Trained on the job's whole training set D (so it knows the forgotten classes) with the job's
recipe, but with its own architecture and seed, so it shares no weights and no initialisation
with the models it judges. Its cache key holds the dataset, the recipe, its model config and
its seed, not the job's model, seed or forget set: every job on the same data shares one judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..context import TrainEnv
from ..models import build_model
from ..params import Seed
from ..training import FitOptions, accuracy, fit
from .base import Lookup, Tensors


class Judge:
    """The producer of the role ``judge`` (configured under ``eval.judge``)."""

    name = "judge"

    def __init__(self, *, model: Mapping[str, Any], seed: Seed = 7919) -> None:
        self.model_cfg, self.seed = dict(model), seed

    def key(self) -> dict[str, Any]:
        return {"model": self.model_cfg, "seed": self.seed}

    def uses_forget_set(self, role: str) -> bool:
        return False

    def _build(self, env: TrainEnv) -> nn.Module:
        return build_model(self.model_cfg, env.data.input_shape, env.data.num_classes
                           ).to(env.device)

    def produce(self, role: str, env: TrainEnv, lookup: Lookup) -> tuple[Tensors, dict[str, Any]]:
        torch.manual_seed(self.seed)
        model = self._build(env)
        seconds = fit(model, env.data.train_x, env.data.train_y, env.recipe, seed=self.seed,
                      options=FitOptions(desc="judge", progress=env.progress))
        test_acc = accuracy(model, env.data.test_x, env.data.test_y)
        return model.state_dict(), {"train_seconds": seconds, "test_accuracy": test_acc}

    def load(self, role: str, tensors: Tensors, meta: dict[str, Any], env: TrainEnv,
             lookup: Lookup) -> tuple[nn.Module, dict[str, Any]]:
        model = self._build(env)
        model.load_state_dict({k: v.to(env.device) for k, v in tensors.items()})
        return model.eval(), {}

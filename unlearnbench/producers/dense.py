"""Dense training with the job's recipe: the original on D, the retrain on D_r, each from the
seed's initialisation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..context import TrainEnv
from ..training import FitOptions, fit
from .base import Lookup, Tensors, load_state


def role_indices(role: str, env: TrainEnv) -> torch.Tensor | None:
    """The training rows of a role: all of D for the original, D_r for the retrain."""
    return None if role == "original" else env.split.retain


class Dense:
    def key(self) -> dict[str, Any]:
        return {}

    def uses_forget_set(self, role: str) -> bool:
        return role != "original"

    def produce(self, role: str, env: TrainEnv, lookup: Lookup) -> tuple[Tensors, dict[str, Any]]:
        torch.manual_seed(env.seed)
        model = env.build_model()
        seconds = fit(model, env.data.train_x, env.data.train_y, env.recipe, seed=env.seed,
                      indices=role_indices(role, env),
                      options=FitOptions(desc=role, progress=env.progress))
        return model.state_dict(), {"train_seconds": seconds}

    def load(self, role: str, tensors: Tensors, meta: dict[str, Any], env: TrainEnv,
             lookup: Lookup) -> tuple[nn.Module, dict[str, Any]]:
        return load_state(env, tensors), {}

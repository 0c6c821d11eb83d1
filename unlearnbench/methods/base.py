"""What every method receives and may return, and the helpers they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Data
from ..scenarios import Split
from ..sparsity import MaskKeeper
from ..training import FitOptions, Objective, Recipe, Regulariser, fit


@dataclass
class UnlearnContext:
    """Runtime objects a method needs; its hyperparameters come from its YAML instead."""

    data: Data                      # tensors on the run's device
    split: Split                    # forget / retain indices into the training set
    recipe: Recipe                  # the recipe the original and the retrain were trained with
    seed: int
    build_model: Callable[[], nn.Module]   # a fresh, untrained model of the same architecture
    retrain: nn.Module | None = None       # the cached gold standard (only `retrain` may use it)
    retrain_seconds: float = float("nan")
    variant: dict[str, Any] = field(default_factory=dict)  # artifacts of a training variant
    progress: bool = True
    masks: dict[str, torch.Tensor] | None = None  # prune-then-unlearn: kept weights (True)

    @property
    def device(self) -> torch.device:
        return self.data.train_x.device


@dataclass
class MethodOutput:
    model: nn.Module
    rte_s: float | None = None      # set only when the cost was paid outside the timed step
    extras: dict[str, float] = field(default_factory=dict)  # method-specific metric columns


def negated_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Gradient ascent on the loss: descend on its negative."""
    return -F.cross_entropy(logits, labels)


def finetune(
    model: nn.Module,
    ctx: UnlearnContext,
    indices: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    labels: torch.Tensor | None = None,
    objective: Objective = F.cross_entropy,
    regulariser: Regulariser | None = None,
    desc: str = "unlearn",
    **recipe_overrides: Any,
) -> nn.Module:
    """Run the shared training loop on ``indices`` with a constant learning rate.

    The batch size, momentum, weight decay and augmentation are the training recipe's, as in
    the reference implementations; ``labels`` replaces the training labels (random labels).
    """
    recipe = replace(ctx.recipe, epochs=int(epochs), lr=float(lr), scheduler="constant",
                     **recipe_overrides)
    # A sparse model keeps its mask: pruned weights stay exactly zero through every step.
    observers = [MaskKeeper(ctx.masks)] if ctx.masks else []
    fit(model, ctx.data.train_x, ctx.data.train_y if labels is None else labels, recipe,
        seed=ctx.seed + 1, indices=indices,
        options=FitOptions(objective=objective, regulariser=regulariser, desc=desc,
                           progress=ctx.progress, observers=observers))
    return model

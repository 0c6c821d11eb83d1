"""Baseline `max_loss` (MAGE fork `forward_weighted_loss`, Palette fork `max_loss=1`): the full
model descends on its own training loss on retain images and ascends on forget images;
loss = retain - alpha * forget."""

from __future__ import annotations

import torch

from ...context import MethodContext
from ...methods.base import MethodOutput
from ..base import InpaintingModel
from ..unlearning import Batch, Objective, UnlearnRecipe, run_unlearning, split_mean
from .entry import (
    Alpha,
    BatchSize,
    Epochs,
    LearningRate,
    MaxForget,
    run_method,
)


def max_loss_objective(alpha: float) -> Objective:
    def objective(model: InpaintingModel, original: InpaintingModel, batch: Batch,
                  g: torch.Generator) -> torch.Tensor:
        retain, forget = split_mean(model.loss(batch.x, batch.draw), batch)
        return retain - alpha * forget

    return objective


def max_loss(model: InpaintingModel, original: InpaintingModel, forget_x: torch.Tensor,
             retain_x: torch.Tensor, *, alpha: float, recipe: UnlearnRecipe, seed: int,
             device: torch.device | str | None = None, progress: bool = False) -> dict[str, float]:
    return run_unlearning(model, original, forget_x, retain_x, max_loss_objective(alpha), recipe,
                          model.generator_parameters(), seed=seed, device=device,
                          progress=progress, desc="max_loss")


def unlearn(model: InpaintingModel, ctx: MethodContext, *, alpha: Alpha = 0.2,
            epochs: Epochs | None = None, lr: LearningRate | None = None,
            batch_size: BatchSize | None = None,
            max_forget: MaxForget | None = 1024) -> MethodOutput:
    """The runner's entry point (conf/method/max_loss.yaml)."""
    return run_method(model, ctx, "baseline", max_loss, epochs=epochs, lr=lr,
                      batch_size=batch_size, max_forget=max_forget, alpha=alpha)

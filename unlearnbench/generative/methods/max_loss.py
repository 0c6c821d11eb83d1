"""Baseline `max_loss` (MAGE fork `forward_weighted_loss`, Palette fork `max_loss=1`): the full
model descends on its own training loss on retain images and ascends on forget images;
loss = retain - alpha * forget."""

from __future__ import annotations

import torch

from ..base import InpaintingModel
from ..unlearning import Batch, Objective, UnlearnRecipe, run_unlearning, split_mean


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

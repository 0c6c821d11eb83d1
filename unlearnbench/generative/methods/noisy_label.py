"""Baseline `noisy_label` (MAGE fork `forward_weighted_loss_noise_label`, Palette fork
`learn_noise=1`): the full model learns random targets for forget images (random tokens drawn
from a Gaussian with the batch's token statistics; for diffusion, noise to predict from an
input without signal) and its usual targets for retain images; loss = retain + alpha * forget."""

from __future__ import annotations

import torch

from ...context import MethodContext
from ...methods.base import MethodOutput
from ..base import InpaintingModel
from ..unlearning import Batch, Objective, UnlearnRecipe, run_unlearning
from .entry import (
    Alpha,
    BatchSize,
    Epochs,
    LearningRate,
    MaxForget,
    run_method,
)


def noisy_label_objective(alpha: float) -> Objective:
    def objective(model: InpaintingModel, original: InpaintingModel, batch: Batch,
                  g: torch.Generator) -> torch.Tensor:
        retain = model.loss(batch.x[batch.retain], batch.draw.rows(batch.retain))
        forget = model.noisy_label_loss(batch.x[batch.forget], batch.draw.rows(batch.forget), g,
                                        stats=batch.x)
        return retain.mean() + alpha * forget.mean()

    return objective


def noisy_label(model: InpaintingModel, original: InpaintingModel, forget_x: torch.Tensor,
                retain_x: torch.Tensor, *, alpha: float, recipe: UnlearnRecipe, seed: int,
                device: torch.device | str | None = None,
                progress: bool = False) -> dict[str, float]:
    return run_unlearning(model, original, forget_x, retain_x, noisy_label_objective(alpha),
                          recipe, model.generator_parameters(), seed=seed, device=device,
                          progress=progress, desc="noisy_label")


def unlearn(model: InpaintingModel, ctx: MethodContext, *, alpha: Alpha = 0.2,
            epochs: Epochs | None = None, lr: LearningRate | None = None,
            batch_size: BatchSize | None = None,
            max_forget: MaxForget | None = 1024) -> MethodOutput:
    """The runner's entry point (conf/method/noisy_label.yaml)."""
    return run_method(model, ctx, "baseline", noisy_label, epochs=epochs, lr=lr,
                      batch_size=batch_size, max_forget=max_forget, alpha=alpha)

"""Baseline `retain_label` (MAGE fork `train_one_epoch_learn_others`, Palette fork
`learn_others=1`): the full model's raw outputs (token logits, predicted noise, pixels) are
pulled (L2) to the frozen original's outputs: for retain images its outputs for the same
image, for forget images its outputs for retain images of the batch (tiled in batch order);
loss = retain + alpha * forget.

``mode=reference`` reproduces the MAGE fork's `compute_loss` in `engine_baseline.py`, which
weights both terms by (1 + label): the forget term lands on the retain images and forget images
get no loss. ``mode=fixed`` applies it to the forget images, as the Palette fork does (for the
diffusion model both modes are the Palette fork's).
"""

from __future__ import annotations

from typing import Literal

import torch

from ...context import MethodContext
from ...methods.base import MethodOutput
from ..base import InpaintingModel
from ..unlearning import (
    Batch,
    Objective,
    UnlearnRecipe,
    check_mode,
    forget_term_rows,
    run_unlearning,
)
from .entry import (
    Alpha,
    BatchSize,
    Epochs,
    LearningRate,
    MaxForget,
    run_method,
)


def output_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).mean(1)


def tiled_retain(outputs: torch.Tensor, batch: Batch, g: torch.Generator) -> torch.Tensor:
    """For every image of the batch, the original's output for a retain image: the references
    tile the retain images' outputs over the batch in its (shuffled) order; our batches are
    sorted by split, so a random order stands in for the reference loader's shuffle."""
    n = len(batch.x)
    order = torch.randperm(n, generator=g).to(outputs.device)
    is_retain = torch.zeros(n, dtype=torch.bool, device=outputs.device)
    is_retain[batch.retain] = True
    retain_pos = order[is_retain[order]]  # batch rows of the retain images, in shuffled order
    tiled = torch.empty_like(outputs)
    tiled[order] = outputs[retain_pos[torch.arange(n, device=outputs.device) % len(retain_pos)]]
    return tiled


def retain_label_objective(alpha: float, mode: str) -> Objective:
    def objective(model: InpaintingModel, original: InpaintingModel, batch: Batch,
                  g: torch.Generator) -> torch.Tensor:
        out = model.outputs(batch.x, batch.draw)
        with torch.no_grad():
            teacher = original.outputs(batch.x, batch.draw)
            targets = tiled_retain(teacher, batch, g)
        retain = output_l2(out[batch.retain], teacher[batch.retain]).mean()
        hit = forget_term_rows(batch, model, mode)
        return retain + alpha * output_l2(out[hit], targets[hit]).mean()

    return objective


def retain_label(model: InpaintingModel, original: InpaintingModel, forget_x: torch.Tensor,
                 retain_x: torch.Tensor, *, alpha: float, mode: str, recipe: UnlearnRecipe,
                 seed: int, device: torch.device | str | None = None,
                 progress: bool = False) -> dict[str, float]:
    check_mode(mode)
    return run_unlearning(model, original, forget_x, retain_x,
                          retain_label_objective(alpha, mode), recipe,
                          model.generator_parameters(), seed=seed, device=device,
                          progress=progress, desc="retain_label")


def unlearn(model: InpaintingModel, ctx: MethodContext, *, alpha: Alpha = 0.2,
            mode: Literal["reference", "fixed"] = "reference",
            epochs: Epochs | None = None, lr: LearningRate | None = None,
            batch_size: BatchSize | None = None,
            max_forget: MaxForget | None = 1024) -> MethodOutput:
    """The runner's entry point (conf/method/retain_label.yaml)."""
    return run_method(model, ctx, "baseline", retain_label, epochs=epochs, lr=lr,
                      batch_size=batch_size, max_forget=max_forget, alpha=alpha, mode=mode)

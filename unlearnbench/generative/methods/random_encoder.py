"""Baseline `random_encoder` (MAGE fork `train_one_epoch_encoder_noise`, Palette fork
`fix_decoder=1, learn_noise=1`): only the encoder is trained; retain features are pulled to the
original's, forget features to Gaussian noise with the mean and std of the original's features
(over the batch, per feature level); loss = retain + alpha * forget.

``mode=reference`` reproduces the MAGE fork's `compute_loss` in `engine_baseline.py` (both terms
weighted by 1 + label): the forget term is applied to the retain images and forget images get
no loss. ``mode=fixed`` applies it to the forget images, as the Palette fork does (for the
diffusion model both modes are the Palette fork's, whose teacher sees a signal-free noisy input
on forget images).
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
    feature_l2,
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


def random_encoder_objective(alpha: float, mode: str) -> Objective:
    def objective(model: InpaintingModel, original: InpaintingModel, batch: Batch,
                  g: torch.Generator) -> torch.Tensor:
        draw, x = batch.draw, batch.x
        student = model.encode(x, draw)
        with torch.no_grad():
            guide = original.encode(x, draw)
            if model.family == "palette":
                on_forget = original.noise_target(x[batch.forget], draw.rows(batch.forget),
                                                  "gaussian", g)
                guide_for_stats = [torch.cat([f, r[batch.retain]])
                                   for f, r in zip(on_forget, guide, strict=True)]
            else:
                guide_for_stats = guide
            noise = [torch.randn(t.shape, generator=g).to(t.device) * t.std() + t.mean()
                     for t in guide_for_stats]
        hit = forget_term_rows(batch, model, mode)
        retain = feature_l2([s[batch.retain] for s in student], [t[batch.retain] for t in guide])
        forget = feature_l2([s[hit] for s in student], [n[hit] for n in noise])
        return retain.mean() + alpha * forget.mean()

    return objective


def random_encoder(model: InpaintingModel, original: InpaintingModel, forget_x: torch.Tensor,
                   retain_x: torch.Tensor, *, alpha: float, mode: str, recipe: UnlearnRecipe,
                   seed: int, device: torch.device | str | None = None,
                   progress: bool = False) -> dict[str, float]:
    check_mode(mode)
    return run_unlearning(model, original, forget_x, retain_x,
                          random_encoder_objective(alpha, mode), recipe,
                          list(model.encoder.parameters()), seed=seed, device=device,
                          progress=progress, desc="random_encoder")


def unlearn(model: InpaintingModel, ctx: MethodContext, *, alpha: Alpha = 0.2,
            mode: Literal["reference", "fixed"] = "reference",
            epochs: Epochs | None = None, lr: LearningRate | None = None,
            batch_size: BatchSize | None = None,
            max_forget: MaxForget | None = 1024) -> MethodOutput:
    """The runner's entry point (conf/method/random_encoder.yaml)."""
    return run_method(model, ctx, "baseline", random_encoder, epochs=epochs, lr=lr,
                      batch_size=batch_size, max_forget=max_forget, alpha=alpha, mode=mode)

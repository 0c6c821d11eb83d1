"""The paper's method (Li et al., ICLR 2024; MAGE fork `engine_unlearn.py`, Palette fork
`network.py` with `fix_decoder`): only the encoder is trained. A retain image's features are
pulled (L2) to the frozen original encoder's features of the same image, a forget image's to
the original's features of a noise image; loss = retain + alpha * forget."""

from __future__ import annotations

from typing import Literal

import torch

from ...context import MethodContext
from ...methods.base import MethodOutput
from ..base import InpaintingModel, check_noise
from ..unlearning import Batch, Objective, UnlearnRecipe, feature_l2, run_unlearning
from .entry import (
    Alpha,
    BatchSize,
    Epochs,
    LearningRate,
    MaxForget,
    Proxy,
    RetainSource,
    run_method,
)


def i2i_objective(alpha: float, noise: str) -> Objective:
    def objective(model: InpaintingModel, original: InpaintingModel, batch: Batch,
                  g: torch.Generator) -> torch.Tensor:
        draw, x = batch.draw, batch.x
        student = model.encode(x, draw)
        with torch.no_grad():
            guide = original.encode(x[batch.retain], draw.rows(batch.retain))
            # The noise statistics are the whole batch's, as in the reference.
            target = original.noise_target(x[batch.forget], draw.rows(batch.forget), noise, g,
                                           stats=x)
        retain = feature_l2([s[batch.retain] for s in student], guide)
        forget = feature_l2([s[batch.forget] for s in student], target)
        return retain.mean() + alpha * forget.mean()

    return objective


def i2i_encoder(model: InpaintingModel, original: InpaintingModel, forget_x: torch.Tensor,
                retain_x: torch.Tensor, *, alpha: float, noise: str, recipe: UnlearnRecipe,
                seed: int, device: torch.device | str | None = None,
                progress: bool = False) -> dict[str, float]:
    """Unlearn in place; ``retain_x`` may be real retain images or a proxy set (the paper's
    open-data retain set: images of another dataset)."""
    check_noise(model, noise)
    return run_unlearning(model, original, forget_x, retain_x, i2i_objective(alpha, noise),
                          recipe, list(model.encoder.parameters()), seed=seed, device=device,
                          progress=progress, desc="i2i_encoder")


def unlearn(model: InpaintingModel, ctx: MethodContext, *, alpha: Alpha = 0.2,
            noise: Literal["gaussian", "uniform", "constant"] = "gaussian",
            retain_source: RetainSource = "real", proxy: Proxy = "mnist_5k",
            epochs: Epochs | None = None, lr: LearningRate | None = None,
            batch_size: BatchSize | None = None,
            max_forget: MaxForget | None = 1024) -> MethodOutput:
    """The runner's entry point (conf/method/i2i_encoder.yaml)."""
    return run_method(model, ctx, "i2i", i2i_encoder, epochs=epochs, lr=lr,
                      batch_size=batch_size, max_forget=max_forget,
                      retain_source=retain_source, proxy=proxy, alpha=alpha, noise=noise)

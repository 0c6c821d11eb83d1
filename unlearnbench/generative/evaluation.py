"""One model's metrics row on held-out retain and forget images: inpaint both, then measure."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models import SmallCNN
from .base import InpaintingModel, inpaint
from .metrics import inpainting_metrics


@dataclass(frozen=True)
class Evaluation:
    row: dict[str, float]       # retain_/forget_ FD, KID, IS, cos; forget_recognised; cos_pvalue
    retain: torch.Tensor        # the inpainted retain images (for the grid)
    forget: torch.Tensor


def evaluate_generator(model: InpaintingModel, judge: SmallCNN, *, retain: torch.Tensor,
                       forget: torch.Tensor, mask: torch.Tensor, forget_classes: list[int],
                       seed: int = 0, steps: int | None = None) -> Evaluation:
    """Inpaint ``retain`` and ``forget`` ground-truth images under ``mask`` (the same seed for
    every model, so original, retrain and unlearned see the same sampling noise) and compute
    the judge-space metrics."""
    retain_out = inpaint(model, retain, mask, seed=seed, steps=steps)
    forget_out = inpaint(model, forget, mask, seed=seed, steps=steps)
    row = inpainting_metrics(judge, retain_generated=retain_out, retain_truth=retain,
                             forget_generated=forget_out, forget_truth=forget,
                             forget_classes=forget_classes)
    return Evaluation(row=row, retain=retain_out, forget=forget_out)

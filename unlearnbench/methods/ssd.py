"""Selective Synaptic Dampening, SSD (Foster et al., AAAI 2024; if-loops/selective-synaptic-
dampening ``src/ssd.py``, ``ParameterPerturber``), and its label-free variant LF-SSD (Foster et
al., "Loss-Free Machine Unlearning", ICLR 2024 Tiny Paper; the same repository's README).

No training. With the model in eval mode, a diagonal importance per parameter from one
unshuffled pass over a set in batches (``calc_importance``), averaged over the batches:

    labels      I = mean_batches (∇ CE(batch))²          (SSD: squared gradients)
    label_free  I = mean_batches |∇ mean_i ‖f(x_i)‖²|    (LF-SSD: no labels needed)

on D_f (I_f) and on D = D_r ∪ D_f (I_D, the reference's retain-then-forget concatenation).
Then every parameter with I_f > α · I_D is dampened (``modify_weight``):

    θ ← θ · min(λ · I_D / I_f, 1)

α (``selection_weighting``) and λ (``dampening_constant``) are the reference's per-architecture
values: α 10, λ 1 for ResNet-18 (class-wise and random); α 5 for ViT class-wise.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..params import BatchSize, PositiveFloat
from .base import MethodContext, epoch_batches

Importance = Literal["labels", "label_free"]


def importances(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor,
                batch_size: int, kind: Importance = "labels") -> dict[str, torch.Tensor]:
    """The mean over batches of (∇ CE)² (``labels``) or |∇ mean ‖f(x)‖²| (``label_free``)."""
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    model.eval()
    count = 0
    for batch in epoch_batches(rows, batch_size):
        model.zero_grad(set_to_none=True)
        out = model(x[batch])
        if kind == "labels":
            F.cross_entropy(out, y[batch]).backward()
        else:
            out.pow(2).sum(dim=1).mean().backward()
        for n, p in params.items():
            if p.grad is not None:
                total[n] += p.grad.pow(2) if kind == "labels" else p.grad.abs()
        count += 1
    model.zero_grad(set_to_none=True)
    return {n: t / max(count, 1) for n, t in total.items()}


@torch.no_grad()
def dampen(model: nn.Module, full: dict[str, torch.Tensor], forget: dict[str, torch.Tensor],
           selection_weighting: float, dampening_constant: float) -> int:
    """θ ← θ · min(λ I_D / I_f, 1) where I_f > α I_D; returns how many weights were dampened."""
    changed = 0
    for n, p in model.named_parameters():
        selected = forget[n] > selection_weighting * full[n]
        factor = (dampening_constant * full[n] / forget[n]).clamp(max=1.0)
        p.copy_(torch.where(selected, p * factor, p))
        changed += int(selected.sum())
    return changed


def unlearn(model: nn.Module, ctx: MethodContext, *,
            selection_weighting: PositiveFloat = 10.0, dampening_constant: PositiveFloat = 1.0,
            importance: Importance = "labels",
            batch_size: BatchSize | None = None) -> nn.Module:
    x, y = ctx.data.train_x, ctx.data.train_y
    forget = ctx.split.forget.to(ctx.device)
    everything = torch.cat([ctx.split.retain.to(ctx.device), forget])
    # The reference's loaders: 64 for class-wise forgetting, 128 for random forgetting.
    size = batch_size or (64 if ctx.forget_classes else 128)
    forget_imp = importances(model, x, y, forget, size, importance)
    full_imp = importances(model, x, y, everything, size, importance)
    dampen(model, full_imp, forget_imp, selection_weighting, dampening_constant)
    return model

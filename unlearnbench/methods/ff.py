"""Fisher forgetting (FF): Gaussian noise scaled by the inverse diagonal Fisher of D_r, after
the reference's `fisher_new` (Unlearn-Sparse; Golatkar et al., CVPR 2020).

    F = (1/m) Σ_i Σ_y p(y|x_i) (∇_θ log p(y|x_i))²      (the true Fisher, diagonal)
    θ_u = μ + sqrt(σ²) ⊙ ε,  ε ~ N(0, I)

with, per parameter tensor as in the reference: σ² = α · min(1/(F + 1e-8), 1e3) (1e2 for the
classifier), averaged over dim 1 for matrices (one variance per output unit), ×10 for the
classifier and for 1-D tensors (biases, batch norm); μ = θ, except that in class-wise
forgetting the classifier rows of the forgotten classes get μ = 0 and σ² = 1e-4 (×10).

The reference sums squared gradients of batch-of-32 losses over all of D_r; we use exact
per-sample gradients (torch.func vmap) of a seeded subsample of m samples of D_r, with y drawn
from p(y|x) (`labels: sampled`, default) or the exact expectation over y (`expected`, C× cost).
On a sparse model the per-unit average runs over kept weights only and the mask is re-applied,
so pruned weights stay zero.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..gradients import per_sample_grads, subsample, trainable, unflatten
from ..masks import apply_masks
from ..params import NonNegativeFloat, PositiveInt, Range
from ..training import predict
from .base import MethodContext


def diagonal_fisher(model: nn.Module, x: torch.Tensor, num_classes: int, *, labels: str,
                    seed: int, chunk: int = 64) -> dict[str, torch.Tensor]:
    """E_x E_{y~p(y|x)} of the squared per-sample gradients, per parameter tensor.

    ``labels="expected"``: the exact expectation over y (one vectorised pass per class);
    ``labels="sampled"``: one y drawn from p(y|x) per sample, an unbiased estimate at 1/C of
    the cost (the Monte-Carlo true Fisher).
    """
    probs = F.softmax(predict(model, x), dim=1)
    total = torch.zeros(sum(p.numel() for p in trainable(model).values()), device=x.device)
    if labels == "sampled":
        g = torch.Generator().manual_seed(seed)
        drawn = torch.multinomial(probs.cpu(), 1, generator=g).squeeze(1).to(x.device)
        passes = [(drawn, torch.ones(len(x), device=x.device))]
    elif labels == "expected":  # a loop over classes; the samples are vectorised
        passes = [(torch.full((len(x),), c, dtype=torch.long, device=x.device), probs[:, c])
                  for c in range(num_classes)]
    else:
        raise ConfigError("method.labels", labels, "sampled, expected")
    for y, weight in passes:
        for rows, grads in per_sample_grads(model, x, y, chunk):
            total += weight[rows] @ grads.square()
    return unflatten(total / max(len(x), 1), trainable(model))


def classifier(model: nn.Module) -> str:
    """Name prefix of the last Linear layer."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def unlearn(model: nn.Module, ctx: MethodContext, *, alpha: NonNegativeFloat,
            labels: Literal["sampled", "expected"] = "sampled",
            num_samples: PositiveInt | None = 1024,
            chunk: Annotated[int, Range(1, 4096)] = 64) -> nn.Module:
    rows = subsample(ctx.split.retain.to(ctx.device), num_samples, ctx.seed)
    fisher = diagonal_fisher(model, ctx.data.train_x[rows], ctx.num_classes,
                             labels=labels, seed=ctx.seed, chunk=chunk)
    head = classifier(model)
    forgotten = list(ctx.forget_classes)
    g = torch.Generator().manual_seed(ctx.seed)
    masks = ctx.masks or {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in fisher:
                continue
            is_head = name.rsplit(".", 1)[0] == head
            var = (1.0 / (fisher[name] + 1e-8)).clamp(max=1e2 if is_head else 1e3) * alpha
            if p.dim() > 1:  # one variance per output unit, over the kept weights
                keep = masks[name].to(p.device, p.dtype) if name in masks else torch.ones_like(p)
                var = ((var * keep).sum(1, keepdim=True)
                       / keep.sum(1, keepdim=True).clamp(min=1)).expand_as(p).clone()
            mu = p.detach().clone()
            if is_head and forgotten:
                mu[forgotten] = 0.0
                var[forgotten] = 1e-4
            if is_head or p.dim() == 1:
                var = var * 10
            noise = torch.randn(p.shape, generator=g).to(p.device)
            p.copy_(mu + var.sqrt() * noise)
    return apply_masks(model, ctx.masks)

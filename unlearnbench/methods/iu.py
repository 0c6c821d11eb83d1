"""Influence unlearning (IU): one Newton step with a WoodFisher inverse Fisher, after the
reference's `wfisher` (Unlearn-Sparse; Koh & Liang 2017; Singh & Alistarh 2020).

    θ_u = θ + α · F⁻¹ ∇L_f(θ),   F = λ·I + (1/m) Σ_i g_i g_iᵀ

∇L_f is the mean cross-entropy gradient over D_f; g_i are per-sample gradients of m samples of
D_r (vectorised with torch.func). The reference accumulates F with the WoodFisher rank-one
recursion over batch-of-32 gradients of all of D_r, starting from I (λ = 1), and in that
recursion keeps only the inverse applied to the *first* gradient; we apply the same F⁻¹
exactly, by the Woodbury identity on the m×m Gram matrix:

    F⁻¹v = (v − Gᵀ (mλ·I + G Gᵀ)⁻¹ G v) / λ.

Memory: G holds m × (number of parameters) floats. On a sparse model the step is taken in the
subspace of kept weights (pruned coordinates of v and G are zero) and the mask re-applied.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from ..gradients import mask_vector, mean_grad, per_sample_grads, subsample, unflatten
from ..masks import apply_masks
from ..params import PositiveFloat, PositiveInt, Range
from .base import MethodContext


def woodfisher_ihvp(grads: torch.Tensor, v: torch.Tensor, damping: float) -> torch.Tensor:
    """(λI + GᵀG/m)⁻¹ v for the m×d matrix of gradients G, solved in float64 on m×m."""
    m = len(grads)
    gram = (grads @ grads.T).double()
    gram.diagonal().add_(m * damping)
    u = torch.linalg.solve(gram, (grads @ v).double()).to(v.dtype)
    return (v - grads.T @ u) / damping


def unlearn(model: nn.Module, ctx: MethodContext, *,
            alpha: PositiveFloat, damping: PositiveFloat = 1.0,
            num_samples: PositiveInt | None = 256,
            chunk: Annotated[int, Range(1, 4096)] = 128) -> nn.Module:
    x, y = ctx.data.train_x, ctx.data.train_y
    forget = ctx.split.forget.to(ctx.device)
    rows = subsample(ctx.split.retain.to(ctx.device), num_samples, ctx.seed)
    v = mean_grad(model, x[forget], y[forget])
    grads = torch.empty(len(rows), len(v), device=v.device)
    for part, g in per_sample_grads(model, x[rows], y[rows], chunk):
        grads[part] = g
    keep = mask_vector(model, ctx.masks)
    if keep is not None:
        v, grads = v * keep, grads * keep
    step = alpha * woodfisher_ihvp(grads, v, float(damping))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, delta in unflatten(step, {n: p for n, p in params.items()
                                            if p.requires_grad}).items():
            params[name].add_(delta)
    return apply_masks(model, ctx.masks)

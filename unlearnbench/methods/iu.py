"""Influence unlearning (IU): one Newton-like step with a WoodFisher inverse Fisher, after the
reference's `wfisher` (OPTML-Group/Unlearn-Sparse, `unlearn/Wfisher.py`; Koh & Liang 2017;
Singh & Alistarh 2020):  θ_u = θ + α · k,  k ≈ F⁻¹ v.

``direction`` (the vector v):
- ``reference`` (Wfisher l.157-180): v = (n_f/n)(∇L_f − ∇L_r), with ∇L_f, ∇L_r the mean
  cross-entropy gradients over all of D_f and all of D_r (eval mode) and n = n_f + n_r;
- ``forget_gradient``: v = ∇L_f (this project's earlier IU).

``mode`` (how k is formed from per-sample gradients g_0, g_1, ... of the retain samples in
their training-set order, the reference's batch-size-1, unshuffled loader):
- ``reference`` (`woodfisher`, l.63-84, the second definition, which replaces the first):
  k = v/λ, o = g_0/λ; for each next sample g: t = o·g, k ← k − (k·g)/(N + t)·o,
  o ← o − t/(N + t)·o; it stops after the sample at index N + 1 (N = ``num_samples``, 1000 in
  the reference; so N + 2 samples). The reference starts from the identity (λ = 1). Its o is
  only ever rescaled, so it stays parallel to g_0: k = (v − β g_0)/λ for a scalar β, not
  F⁻¹v. Since o is only rescaled the recursion is computed here from the scalars v·g_i and
  g_0·g_i, with per-sample gradients in chunks (memory chunk × #params floats).
- ``fixed``: the recursion as WoodFisher intends it, F = λI + (1/N) Σ_{i<N} g_i g_iᵀ over the
  first N retain samples, applied exactly by the Woodbury identity on the N × N Gram matrix:
  F⁻¹v = (v − Gᵀ(NλI + GGᵀ)⁻¹Gv)/λ (memory N × #params floats).

On a sparse model v and the g_i are zero at pruned weights (the reference's pruned models
give zero gradients there) and the mask is re-applied after the step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

import torch
from torch import nn

from ..gradients import mask_vector, mean_grad, per_sample_grads, unflatten
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


def reference_woodfisher(chunks: Iterable[torch.Tensor], v: torch.Tensor, n: int,
                         damping: float) -> torch.Tensor:
    """The reference's rank-one recursion over the per-sample gradients in ``chunks`` (rows in
    order), with its constant ``n`` (N) and F_0 = λI. Returns k = (v − β g_0)/λ."""
    first: torch.Tensor | None = None
    dots_v, dots_first = [], []
    for grads in chunks:
        if first is None:
            first, grads = grads[0].clone(), grads[1:]
        dots_v.append((grads @ v).double())
        dots_first.append((grads @ first).double())
    if first is None:
        return v / damping
    beta, scale = 0.0, 1.0          # k = (v − β g_0)/λ,  o = scale · g_0/λ
    for a, b in zip(torch.cat(dots_v).tolist(), torch.cat(dots_first).tolist(), strict=True):
        t = scale * b / damping                      # o·g
        k_dot_g = (a - beta * b) / damping           # k·g
        beta += k_dot_g / (n + t) * scale
        scale *= n / (n + t)
    return (v - beta * first) / damping


def unlearn(model: nn.Module, ctx: MethodContext, *, alpha: PositiveFloat,
            direction: Literal["reference", "forget_gradient"] = "reference",
            mode: Literal["reference", "fixed"] = "reference",
            damping: PositiveFloat = 1.0, num_samples: PositiveInt = 1000,
            chunk: Annotated[int, Range(1, 4096)] = 128) -> nn.Module:
    x, y = ctx.data.train_x, ctx.data.train_y
    forget = ctx.split.forget.to(ctx.device)
    retain = ctx.split.retain.to(ctx.device)
    v = mean_grad(model, x[forget], y[forget])
    if direction == "reference":
        n_f, n_r = len(forget), len(retain)
        v = n_f / (n_f + n_r) * (v - mean_grad(model, x[retain], y[retain]))
    keep = mask_vector(model, ctx.masks)
    if keep is not None:
        v = v * keep
    # The reference's loader: batch size 1, no shuffling; it stops after index N + 1.
    rows = retain[: num_samples + 2] if mode == "reference" else retain[:num_samples]
    chunks = (g if keep is None else g * keep
              for _, g in per_sample_grads(model, x[rows], y[rows], chunk))
    if mode == "reference":
        k = reference_woodfisher(chunks, v, num_samples, float(damping))
    else:
        k = woodfisher_ihvp(torch.cat(list(chunks)), v, float(damping))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, delta in unflatten(alpha * k, {n: p for n, p in params.items()
                                                 if p.requires_grad}).items():
            params[name].add_(delta)
    return apply_masks(model, ctx.masks)

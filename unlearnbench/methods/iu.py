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
  g_0·g_i, each a directional derivative of sample i's loss (forward-mode, batched): no
  per-sample gradient but g_0's is formed.
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

from ..gradients import mask_vector, mean_grad, per_sample_dots, per_sample_grads, unflatten
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
        dots_v.append(grads @ v)
        dots_first.append(grads @ first)
    if first is None:
        return v / damping
    return reference_from_dots(first, v, torch.cat(dots_v), torch.cat(dots_first), n, damping)


def reference_from_dots(first: torch.Tensor, v: torch.Tensor, dots_v: torch.Tensor,
                        dots_first: torch.Tensor, n: int, damping: float) -> torch.Tensor:
    """The same recursion from the scalars it reads: g_i·v and g_i·g_0 for the samples after
    the first (o stays parallel to g_0, so nothing else enters)."""
    beta, scale = 0.0, 1.0          # k = (v − β g_0)/λ,  o = scale · g_0/λ
    for a, b in zip(dots_v.double().tolist(), dots_first.double().tolist(), strict=True):
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
    if mode == "reference":
        # Only g_0 and the scalars g_i·v, g_i·g_0 enter: the dots come from forward-mode
        # passes (per_sample_dots), not from N per-sample gradients (same numbers, ~7x less
        # time on the digits MLP: scripts/iu_speed.py).
        rows = retain[: num_samples + 2]
        g0 = mean_grad(model, x[rows[:1]], y[rows[:1]])
        first = g0 if keep is None else g0 * keep
        rest = rows[1:]
        k = reference_from_dots(first, v, per_sample_dots(model, x[rest], y[rest], v),
                                per_sample_dots(model, x[rest], y[rest], first),
                                num_samples, float(damping))
    else:
        rows = retain[:num_samples]
        k = woodfisher_ihvp(torch.cat([g if keep is None else g * keep for _, g in
                                       per_sample_grads(model, x[rows], y[rows], chunk)]),
                            v, float(damping))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, delta in unflatten(alpha * k, {n: p for n, p in params.items()
                                                 if p.requires_grad}).items():
            params[name].add_(delta)
    return apply_masks(model, ctx.masks)

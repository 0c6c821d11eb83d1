"""Fisher forgetting (FF): Gaussian noise scaled by the inverse diagonal Fisher of D_r, after
the reference's `fisher_new` (OPTML-Group/Unlearn-Sparse, `unlearn/fisher.py`; Golatkar et
al., CVPR 2020).

The Fisher F (``fisher``):
- ``reference`` (`hessian`, l.51-76): D_r in its training-set order, cut into batches of
  ``batch_size`` (32, the last one partial), eval mode; for every batch b and every class y,
  the gradient of the batch-mean cross-entropy with every label set to y, squared, weighted
  by the batch-mean probability of y:  F = (1/B) Σ_b Σ_y mean_{i∈b} p(y|x_i) · (∇ mean_{i∈b}
  CE(x_i, y))²,  B = the number of batches. Vectorised over classes and batches (torch.func).
- ``per_sample``: the per-sample true Fisher (1/m) Σ_i Σ_y p(y|x_i)(∇ log p(y|x_i))² over m
  samples of D_r, y drawn from p(y|x) (``labels: sampled``) or summed over (``expected``);
  this project's earlier FF. Per-sample gradients are about 40× smaller than batch-mean ones
  on our MLPs, so the same α gives far less structured noise.

Mean and variance per parameter tensor (`get_mean_var`, l.79-104): σ² = min(1/(F + 1e-8), 1e3),
then min(·, 1e2) for a tensor whose first dimension is the class count (the classifier's
weight and bias), times α; averaged over dim 1 for tensors of 2+ dimensions (over the kept
weights on a sparse model); μ = θ. With head zeroing the rows of the forgotten classes get
μ = 0 and σ² = 1e-4. Finally ×10 for the classifier tensors and for 1-D tensors (biases, batch
norm). θ_u = μ + σ ⊙ ε, ε ~ N(0, I) (seeded).

Head zeroing (``zero_forgotten_head``): the reference zeroes the rows only when it forgets one
whole class of CIFAR-10 or CIFAR-100 (its test is ``num_indexes_to_replace`` = 4500 / 450, one
class of its 45,000-sample training split); ``auto`` follows that: class-wise forgetting of
exactly one class on cifar10 or cifar100, never on other datasets (digits, Fashion-MNIST, ...).
``true`` zeroes the forgotten classes' rows whenever whole classes are forgotten; ``false``
never.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vjp, vmap

from ..gradients import per_sample_grads, subsample, trainable, unflatten
from ..masks import apply_masks
from ..params import BatchSize, NonNegativeFloat, PositiveInt, Range
from ..training import predict
from .base import MethodContext

ZEROED_IN_REFERENCE = ("cifar10", "cifar100")  # fisher.py l.92-95
MAX_VARIANCE, MAX_HEAD_VARIANCE = 1e3, 1e2     # the reference's clamps of 1/F
FORGOTTEN_ROW_VARIANCE = 1e-4
HEAD_AND_1D_FACTOR = 10.0


def batch_fisher(model: nn.Module, x: torch.Tensor, num_classes: int, *, batch_size: int,
                 chunk: int = 64) -> dict[str, torch.Tensor]:
    """The reference's Fisher: (1/B) Σ_b Σ_y p̄_{b,y} (∇ mean-CE of batch b with label y)²,
    about ``chunk`` samples (whole batches) per vectorised call.

    One forward pass per batch serves every label: the loss gradient with respect to the
    logits of sample i is (softmax(f_i) − e_y)/|b|, pulled back through the network for all
    y at once (a vmapped vector-Jacobian product)."""
    model.eval()
    params = trainable(model)
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    one_hot = torch.eye(num_classes, device=x.device)

    def batch_grads(p: dict[str, torch.Tensor], xb: torch.Tensor
                    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        logits, pullback = vjp(lambda q: functional_call(model, (q, buffers), (xb,)), p)
        probs = F.softmax(logits, dim=1)
        cotangents = (probs.unsqueeze(0) - one_hot[:, None, :]) / len(xb)  # (C, |b|, C)
        return vmap(pullback)(cotangents)[0], probs.mean(0)

    per_batch = vmap(batch_grads, in_dims=(None, 0))                 # equal-size batches
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    starts = list(range(0, len(x), batch_size))
    full = [s for s in starts if s + batch_size <= len(x)]
    per_call = max(1, chunk // batch_size)
    groups = [full[i : i + per_call] for i in range(0, len(full), per_call)]
    groups += [[s] for s in starts if s + batch_size > len(x)]      # the partial last batch
    with torch.no_grad():
        for group in groups:
            xb = torch.stack([x[s : s + batch_size] for s in group])
            grads, weight = per_batch(params, xb)            # name -> (b, C, *shape); (b, C)
            for name, g in grads.items():
                total[name] += torch.einsum("bc,bc...->...", weight, g.square())
    return {n: t / max(len(starts), 1) for n, t in total.items()}


def sample_fisher(model: nn.Module, x: torch.Tensor, num_classes: int, *, labels: str,
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
    else:  # expected: a loop over classes; the samples are vectorised
        passes = [(torch.full((len(x),), c, dtype=torch.long, device=x.device), probs[:, c])
                  for c in range(num_classes)]
    for y, weight in passes:
        for rows, grads in per_sample_grads(model, x, y, chunk):
            total += weight[rows] @ grads.square()
    return unflatten(total / max(len(x), 1), trainable(model))


def mean_and_variance(p: torch.Tensor, fisher: torch.Tensor, *, alpha: float, num_classes: int,
                      forgotten: list[int], keep: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's `get_mean_var` for one tensor; ``keep`` limits the dim-1 average to
    the kept weights of a sparse model."""
    is_head = p.shape[0] == num_classes
    var = (1.0 / (fisher + 1e-8)).clamp(max=MAX_VARIANCE)
    if is_head:
        var = var.clamp(max=MAX_HEAD_VARIANCE)
    var = alpha * var
    if p.dim() > 1:  # one variance per row (per output unit, per kernel position for convs)
        keep = torch.ones_like(p) if keep is None else keep.to(p.device, p.dtype)
        var = ((var * keep).sum(1, keepdim=True)
               / keep.sum(1, keepdim=True).clamp(min=1)).expand_as(p).clone()
    mu = p.detach().clone()
    if is_head and forgotten:
        mu[forgotten] = 0.0
        var[forgotten] = FORGOTTEN_ROW_VARIANCE
    if is_head or p.dim() == 1:
        var = var * HEAD_AND_1D_FACTOR
    return mu, var


def zeroes_head(setting: bool | str, ctx: MethodContext) -> bool:
    """Whether the forgotten classes' classifier rows are zeroed (see the module docstring)."""
    if setting == "auto":
        return ctx.dataset in ZEROED_IN_REFERENCE and len(ctx.forget_classes) == 1
    return bool(setting)


def unlearn(model: nn.Module, ctx: MethodContext, *, alpha: NonNegativeFloat,
            fisher: Literal["reference", "per_sample"] = "reference",
            zero_forgotten_head: Literal["auto"] | bool = "auto",
            batch_size: BatchSize = 32,
            labels: Literal["sampled", "expected"] = "sampled",
            num_samples: PositiveInt | None = None,
            chunk: Annotated[int, Range(1, 65536)] = 64) -> nn.Module:
    rows = subsample(ctx.split.retain.to(ctx.device), num_samples, ctx.seed)
    x = ctx.data.train_x[rows]
    if fisher == "reference":
        fishers = batch_fisher(model, x, ctx.num_classes, batch_size=batch_size, chunk=chunk)
    else:
        fishers = sample_fisher(model, x, ctx.num_classes, labels=labels, seed=ctx.seed,
                                chunk=chunk)
    forgotten = list(ctx.forget_classes) if zeroes_head(zero_forgotten_head, ctx) else []
    g = torch.Generator().manual_seed(ctx.seed)
    masks = ctx.masks or {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in fishers:
                continue
            mu, var = mean_and_variance(p, fishers[name], alpha=float(alpha),
                                        num_classes=ctx.num_classes, forgotten=forgotten,
                                        keep=masks.get(name))
            noise = torch.randn(p.shape, generator=g).to(p.device)
            p.copy_(mu + var.sqrt() * noise)
    return apply_masks(model, ctx.masks)

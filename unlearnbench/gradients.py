"""Per-sample gradients, vectorised with ``torch.func`` (vmap over grad), for the second-order
methods (IU, FF). One vmapped call per chunk of samples: no Python loop over samples."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jvp, vmap


def trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def flatten(tensors: dict[str, torch.Tensor], dim0: bool = False) -> torch.Tensor:
    """Concatenate per-parameter tensors into one vector (or one row per sample)."""
    if dim0:
        return torch.cat([t.flatten(1) for t in tensors.values()], dim=1)
    return torch.cat([t.flatten() for t in tensors.values()])


def unflatten(vector: torch.Tensor, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = vector[start : start + t.numel()].view_as(t)
        start += t.numel()
    return out


def mask_vector(model: nn.Module, masks: dict[str, torch.Tensor] | None) -> torch.Tensor | None:
    """The flat 0/1 vector of kept coordinates (None for a dense model)."""
    if not masks:
        return None
    params = trainable(model)
    return flatten({n: (masks[n].to(p.device, p.dtype) if n in masks else torch.ones_like(p))
                    for n, p in params.items()})


def per_sample_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     chunk: int = 128) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(rows, G)`` per chunk of samples: G[i] is the flat gradient of
    CE(model(x_i), y_i) over the trainable parameters, for the samples ``rows``.

    The model is used in eval mode (batch-norm statistics frozen), as in the references.
    """
    model.eval()
    params = trainable(model)
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    batched = vmap(grad(loss), in_dims=(None, 0, 0))
    for start in range(0, len(x), chunk):
        rows = torch.arange(start, min(start + chunk, len(x)), device=x.device)
        yield rows, flatten(batched(params, x[rows], y[rows]), dim0=True)


def per_sample_dots(model: nn.Module, x: torch.Tensor, y: torch.Tensor, u: torch.Tensor,
                    batch_size: int = 1024) -> torch.Tensor:
    """(∇ℓ_i · u)_i for every sample i, ℓ_i = CE(model(x_i), y_i) and u a flat vector over the
    trainable parameters: the directional derivative of each sample's loss along u, one
    batched forward-mode pass (jvp) per batch, without materialising any per-sample gradient
    (the same numbers as ``per_sample_grads(...) @ u``, at the cost of about two forwards).
    Eval mode, as :func:`per_sample_grads`."""
    model.eval()
    params = trainable(model)
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    tangent = unflatten(u.to(next(iter(params.values())).dtype), params)
    out = []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]

        def losses(p: dict[str, torch.Tensor], xb: torch.Tensor = xb,
                   yb: torch.Tensor = yb) -> torch.Tensor:
            return F.cross_entropy(functional_call(model, (p, buffers), (xb,)), yb,
                                   reduction="none")

        out.append(jvp(losses, (params,), (tangent,))[1])
    return torch.cat(out) if out else torch.zeros(0, device=x.device)


def mean_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              batch_size: int = 1024) -> torch.Tensor:
    """The flat gradient of the mean cross-entropy over (x, y), in eval mode."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    total = torch.zeros(sum(p.numel() for p in params), device=x.device)
    for start in range(0, len(x), batch_size):
        loss = F.cross_entropy(model(x[start : start + batch_size]),
                               y[start : start + batch_size], reduction="sum")
        total += torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])
    return total / max(len(x), 1)


def subsample(indices: torch.Tensor, count: int | None, seed: int) -> torch.Tensor:
    """A seeded random subset of ``count`` indices (all of them for None or a larger count)."""
    if count is None or count >= len(indices):
        return indices
    g = torch.Generator().manual_seed(seed)
    return indices[torch.randperm(len(indices), generator=g)[:count].to(indices.device)]

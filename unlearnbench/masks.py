"""Pruning masks: which weights of a model are kept, how to choose them (global magnitude,
SynFlow) and how to keep pruned weights at zero while training.

Masks are ``{parameter name: bool tensor}`` (True = kept) over the *prunable* weights: the
weights of every Conv2d and Linear layer except the classifier (the last Linear), as the
Unlearn-Sparse reference prunes every conv layer and leaves the fully connected head dense.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

Masks = dict[str, torch.Tensor]


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """Conv2d and Linear weights, the classifier (last Linear) excepted."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    if layers and isinstance(layers[-1][1], nn.Linear):
        layers = layers[:-1]
    return {f"{n}.weight" if n else "weight": m.weight for n, m in layers}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks | None) -> nn.Module:
    """Zero the pruned weights in place."""
    if masks:
        params = dict(model.named_parameters())
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].device, params[name].dtype))
    return model


class MaskKeeper:
    """StepObserver: re-zero the pruned weights after every optimiser step, so momentum and
    weight decay never revive them and the shared `fit` loop trains only the kept weights."""

    def __init__(self, masks: Masks) -> None:
        self.masks = masks

    def before_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        pass

    def after_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        apply_masks(model, self.masks)


def density(masks: Masks) -> float:
    """Share of prunable weights kept."""
    total = sum(m.numel() for m in masks.values())
    return sum(int(m.sum()) for m in masks.values()) / max(total, 1)


def _keep_top(scores: dict[str, torch.Tensor], keep: int) -> Masks:
    """Global mask keeping the ``keep`` highest scores (ties broken by position)."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    chosen = torch.zeros(len(flat), dtype=torch.bool, device=flat.device)
    chosen[torch.topk(flat, keep, sorted=False).indices] = True
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = chosen[start : start + s.numel()].view_as(s).cpu()
        start += s.numel()
    return masks


def magnitude_masks(model: nn.Module, rate: float, masks: Masks | None = None) -> Masks:
    """Global magnitude pruning of ``rate`` of the still-kept prunable weights (IMP semantics:
    each round removes a share of what is left)."""
    weights = {n: p.detach() for n, p in prunable(model).items()}
    kept = {n: (masks[n].to(w.device) if masks else torch.ones_like(w, dtype=torch.bool))
            for n, w in weights.items()}
    alive = sum(int(k.sum()) for k in kept.values())
    scores = {n: torch.where(kept[n], w.abs(), torch.full_like(w, -1.0))
              for n, w in weights.items()}
    return _keep_top(scores, alive - round(rate * alive))


def synflow_masks(model: nn.Module, rate: float, input_shape: tuple[int, ...],
                  iterations: int) -> Masks:
    """SynFlow (Tanaka et al., 2020): data-free, iterative, on the given (initial) weights.

    Score = |θ ⊙ ∂R/∂θ| with R = 1ᵀ(∏|W|)1, the sum of the outputs of the network with
    absolute weights on an all-ones input; pruning follows the exponential schedule
    density_k = (1 − rate)^(k/iterations), k = 1..iterations, globally.
    """
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    original = {n: p.detach().clone() for n, p in prunable(net).items()}
    masks = {n: torch.ones_like(w, dtype=torch.bool) for n, w in original.items()}
    total = sum(w.numel() for w in original.values())
    x = torch.ones(1, *input_shape, dtype=torch.float64, device=next(net.parameters()).device)
    for k in range(1, iterations + 1):
        params = prunable(net)
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(original[n] * masks[n])
        net.zero_grad(set_to_none=True)
        net(x).sum().backward()
        scores = {n: torch.where(masks[n], (p.grad * p).abs(), torch.full_like(p, -1.0))
                  for n, p in params.items()}
        masks = {n: m.to(original[n].device) for n, m in
                 _keep_top(scores, round(total * (1 - rate) ** (k / iterations))).items()}
    return {n: m.cpu() for n, m in masks.items()}

"""SalUn, saliency unlearning (Fan et al., ICLR 2024; OPTML-Group/Unlearn-Saliency).

1. Weight saliency (the reference's ``Classification/generate_mask.py``): one pass over D_f in
   batches, model in eval mode; the gradients of the batch-mean loss −CE are *summed over the
   batches* (signed), then |·| is taken. Every named parameter (weights, biases, norm layers)
   is ranked in one global list and the top ``floor(N · mask_ratio)`` are salient (mask 1).
2. Random-label unlearning (the reference's ``unlearn/RL.py``) on D_f with random labels plus
   D_r, updating only the salient weights. After every optimiser step the weights outside the
   mask are restored to the original and their momentum cleared (the reference's fix of
   February 2026, "Fix weight decay", PR #33), so weight decay and momentum never move them:
   they end bit-identical to the original.

The labels and the loop are RL's (`methods/rl.py`, the reference's ``unlearn/RL.py``), with
the same keys: by default (``labels: salun``, ``order: auto``) each forget label is uniform
over all C classes (the true one included), drawn again per batch, and every epoch runs the
shuffled forget batches before the shuffled retain batches (the reference's CIFAR-10/SVHN loop;
its CIFAR-100 loop, one shuffled pass over D_f ∪ D_r, on cifar100). ``labels: other_class``
with ``order: auto`` is this project's earlier SalUn (one draw from the other C−1 classes, one
shuffled pass). See conf/method/salun.yaml.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from ..params import Epochs, LearningRate, Range
from .base import MethodContext, epoch_batches, finetune
from .rl import LabelRule, LoopOrder, random_label_plan

MaskRatio = Annotated[float, Range(0, 1, low_open=True, hint="a number in (0, 1]: the share "
                                   "of weights updated")]


def saliency_mask(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                  ratio: float) -> dict[str, torch.Tensor]:
    """{parameter name: bool mask}: the ``floor(N · ratio)`` parameters (of all N) with the
    largest |Σ_batches ∇(−CE)| on (x, y), ranked globally (ties by position)."""
    params = dict(model.named_parameters())
    summed = {n: torch.zeros_like(p) for n, p in params.items()}
    model.eval()
    for batch in epoch_batches(torch.arange(len(x), device=x.device), batch_size):
        model.zero_grad(set_to_none=True)
        (-F.cross_entropy(model(x[batch]), y[batch])).backward()
        for n, p in params.items():
            if p.grad is not None:
                summed[n] += p.grad
    model.zero_grad(set_to_none=True)
    flat = torch.cat([g.abs().flatten() for g in summed.values()])
    chosen = torch.zeros(len(flat), dtype=torch.bool, device=flat.device)
    chosen[torch.argsort(flat, descending=True, stable=True)[: int(len(flat) * ratio)]] = True
    masks, start = {}, 0
    for n, g in summed.items():
        masks[n] = chosen[start : start + g.numel()].view_as(g)
        start += g.numel()
    return masks


class SaliencyKeeper:
    """StepObserver: after every step, weights outside the saliency mask get their original
    values back and their momentum is cleared (the reference's `_restore_masked_params`).

    Plain SGD updates every coordinate on its own, so the momentum of a restored coordinate can
    only ever move that coordinate, which is restored again after the next step; clearing it
    therefore changes nothing the model computes, and the restore alone gives the reference's
    trajectory (the observer sees the model, not the optimiser)."""

    def __init__(self, model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
        self.masks = masks
        self.original = {n: p.detach().clone() for n, p in model.named_parameters()}

    def before_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        pass

    @torch.no_grad()
    def after_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        for n, p in model.named_parameters():
            p.copy_(torch.where(self.masks[n], p, self.original[n]))


def unlearn(model: nn.Module, ctx: MethodContext, *, epochs: Epochs, lr: LearningRate,
            mask_ratio: MaskRatio = 0.5, labels: LabelRule = "salun",
            order: LoopOrder = "auto") -> nn.Module:
    x, y = ctx.data.train_x, ctx.data.train_y
    forget = ctx.split.forget.to(ctx.device)
    masks = saliency_mask(model, x[forget], y[forget], ctx.recipe.batch_size, mask_ratio)
    rows, plan = random_label_plan(ctx, labels, order)
    return finetune(model, ctx, rows, epochs=epochs, lr=lr, epoch_plan=plan, desc="salun",
                    observers=[SaliencyKeeper(model, masks)])

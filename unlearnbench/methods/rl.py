"""Random labels (RL): relabel D_f at random and fine-tune on D_f with those labels plus D_r,
the baseline of the SalUn paper (Fan et al., ICLR 2024)."""

from __future__ import annotations

import torch
from torch import nn

from ..params import Epochs, LearningRate
from .base import MethodContext, finetune


def random_other_labels(labels: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """A uniformly drawn label different from the true one, for each sample."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, labels.shape, generator=g).to(labels.device)
    return (labels + shift) % num_classes


def unlearn(model: nn.Module, ctx: MethodContext, *, epochs: Epochs,
            lr: LearningRate) -> nn.Module:
    forget = ctx.split.forget.to(ctx.device)
    labels = ctx.data.train_y.clone()
    labels[forget] = random_other_labels(labels[forget], ctx.num_classes, ctx.seed)
    everything = torch.arange(len(labels), device=ctx.device)
    return finetune(model, ctx, everything, epochs=epochs, lr=lr, labels=labels, desc="rl")

"""Random labels (RL): relabel D_f at random and fine-tune on D_f with those labels plus D_r,
the baseline of the SalUn paper (Fan et al., ICLR 2024)."""

from __future__ import annotations

import torch
from torch import nn

from ..params import Epochs, LearningRate
from .base import Ensemble, EnsembleContext, MethodContext, finetune, finetune_ensemble


def random_other_labels(labels: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """A uniformly drawn label different from the true one, for each sample."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, labels.shape, generator=g).to(labels.device)
    return (labels + shift) % num_classes


def relabelled(ctx: MethodContext, seed: int) -> torch.Tensor:
    """The training labels with D_f's replaced by random other labels drawn from ``seed``."""
    forget = ctx.split.forget.to(ctx.device)
    labels = ctx.data.train_y.clone()
    labels[forget] = random_other_labels(labels[forget], ctx.num_classes, seed)
    return labels


def unlearn(model: nn.Module, ctx: MethodContext, *, epochs: Epochs,
            lr: LearningRate) -> nn.Module:
    everything = torch.arange(len(ctx.data.train_y), device=ctx.device)
    return finetune(model, ctx, everything, epochs=epochs, lr=lr,
                    labels=relabelled(ctx, ctx.seed), desc="rl")


def unlearn_ensemble(models: Ensemble, ctx: EnsembleContext, *, epochs: Epochs,
                     lr: LearningRate) -> Ensemble:
    """``unlearn`` for N members at once (the privacy protocol), each with its own labels."""
    everything = torch.arange(len(ctx.data.train_y), device=ctx.device)
    labels = torch.stack([relabelled(ctx, seed) for seed in ctx.seeds])
    return finetune_ensemble(models, ctx, everything, epochs=epochs, lr=lr, labels=labels,
                             desc="rl")

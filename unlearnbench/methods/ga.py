"""Gradient ascent (GA): maximise the training loss on the forget set D_f (Thudi et al.).
Needs nothing but D_f (access: forget_only)."""

from __future__ import annotations

from torch import nn

from ..params import Epochs, LearningRate
from .base import (
    Ensemble,
    EnsembleContext,
    MethodContext,
    finetune,
    finetune_ensemble,
    negated_cross_entropy,
)


def unlearn(model: nn.Module, ctx: MethodContext, *, epochs: Epochs,
            lr: LearningRate) -> nn.Module:
    return finetune(model, ctx, ctx.split.forget, epochs=epochs, lr=lr,
                    objective=negated_cross_entropy, desc="ga")


def unlearn_ensemble(models: Ensemble, ctx: EnsembleContext, *, epochs: Epochs,
                     lr: LearningRate) -> Ensemble:
    """``unlearn`` for N members at once (the privacy protocol)."""
    return finetune_ensemble(models, ctx, ctx.split.forget, epochs=epochs, lr=lr,
                             objective=negated_cross_entropy, desc="ga")

"""Fine-tuning (FT): continue training on the retain set D_r only (Warnecke et al.; Unlearn-Sparse
baseline), relying on catastrophic forgetting of D_f."""

from __future__ import annotations

from torch import nn

from ..params import Epochs, LearningRate
from .base import Ensemble, EnsembleContext, MethodContext, finetune, finetune_ensemble


def unlearn(model: nn.Module, ctx: MethodContext, *, epochs: Epochs,
            lr: LearningRate) -> nn.Module:
    return finetune(model, ctx, ctx.split.retain, epochs=epochs, lr=lr, desc="ft")


def unlearn_ensemble(models: Ensemble, ctx: EnsembleContext, *, epochs: Epochs,
                     lr: LearningRate) -> Ensemble:
    """``unlearn`` for N members at once (the privacy protocol)."""
    return finetune_ensemble(models, ctx, ctx.split.retain, epochs=epochs, lr=lr, desc="ft")

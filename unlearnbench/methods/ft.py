"""Fine-tuning (FT): continue training on the retain set D_r only (Warnecke et al.; Unlearn-Sparse
baseline), relying on catastrophic forgetting of D_f."""

from __future__ import annotations

from torch import nn

from ..params import Epochs, LearningRate
from .base import MethodContext, finetune


def unlearn(model: nn.Module, ctx: MethodContext, *, epochs: Epochs,
            lr: LearningRate) -> nn.Module:
    return finetune(model, ctx, ctx.split.retain, epochs=epochs, lr=lr, desc="ft")

"""Gradient ascent (GA): maximise the training loss on the forget set D_f (Thudi et al.)."""

from __future__ import annotations

from torch import nn

from .base import UnlearnContext, finetune, negated_cross_entropy


def unlearn(model: nn.Module, ctx: UnlearnContext, *, epochs: int, lr: float) -> nn.Module:
    return finetune(model, ctx, ctx.split.forget, epochs=epochs, lr=lr,
                    objective=negated_cross_entropy, desc="ga")

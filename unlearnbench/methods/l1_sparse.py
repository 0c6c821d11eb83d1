"""ℓ1-sparse unlearning (Jia et al., NeurIPS 2023, "sparsity-aware unlearning"; the reference's
`FT_prune`): fine-tune on D_r with the penalty γ_e · ‖θ‖₁ over every parameter.

γ_e is constant within an epoch e = 0..E−1 (as in the reference) and follows a scheduler; with
E' = E − no_l1_epochs, p = e / E' and γ_e = 0 for e ≥ E':

    constant  γ_e = γ
    linear    γ_e = γ · (1 − p)                       (the reference; the paper's best)
    tanh      γ_e = γ · (1 − tanh(3p) / tanh(3))      (a smooth decay, faster at the start)

Both decaying schedulers start at γ and fall towards 0: e.g. E = 10, linear gives γ·1.0, 0.9,
..., 0.1; tanh gives γ·1.0, 0.70, 0.45, ... , 0.01.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Literal

import torch
from torch import nn

from ..errors import ConfigError
from ..params import Below, Epochs, LearningRate, NonNegativeFloat, NonNegativeInt
from .base import MethodContext, finetune

SCHEDULERS: dict[str, Callable[[float], float]] = {
    "constant": lambda p: 1.0,
    "linear": lambda p: 1.0 - p,
    "tanh": lambda p: 1.0 - math.tanh(3.0 * p) / math.tanh(3.0),
}


def gamma_at(epoch: int, epochs: int, gamma: float, scheduler: str,
             no_l1_epochs: int = 0) -> float:
    """γ for 0-based ``epoch`` of ``epochs``."""
    if scheduler not in SCHEDULERS:
        raise ConfigError("method.scheduler", scheduler, ", ".join(SCHEDULERS))
    active = epochs - no_l1_epochs
    if epoch >= active:
        return 0.0
    return gamma * SCHEDULERS[scheduler](epoch / active)


def l1_norm(model: nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for p in model.parameters() if p.requires_grad)


def unlearn(model: nn.Module, ctx: MethodContext, *, epochs: Epochs, lr: LearningRate,
            gamma: NonNegativeFloat, scheduler: Literal["constant", "linear", "tanh"] = "linear",
            no_l1_epochs: Annotated[NonNegativeInt, Below("epochs")] = 0) -> nn.Module:

    def penalty(net: nn.Module, progress: float) -> torch.Tensor:
        epoch = min(int(progress * epochs), epochs - 1)  # fit passes the share of epochs done
        return gamma_at(epoch, epochs, gamma, scheduler, no_l1_epochs) * l1_norm(net)

    return finetune(model, ctx, ctx.split.retain, epochs=epochs, lr=lr, regulariser=penalty,
                    desc="l1_sparse")

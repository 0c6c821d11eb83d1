"""NegGrad+ (Kurmanji et al., NeurIPS 2023, the SCRUB paper's strong baseline; meghdadk/SCRUB
``train_negrad`` in thirdparty/repdistiller/helper/loops.py): descend on

    β · CE(D_r batch) − (1 − β) · CE(D_f batch)

over one pass of D_r per epoch, each retain batch paired with the next forget batch; the forget
batches are cycled (``itertools.cycle`` replays the epoch's first shuffle of D_f) when D_f has
fewer batches than D_r. The model is in train mode; plain SGD (the reference's
``torch.optim.SGD(lr, weight_decay=0)``: no momentum).
"""

from __future__ import annotations

from itertools import cycle

import torch
import torch.nn.functional as F
from torch import nn

from ..params import BatchSize, Epochs, LearningRate, Momentum, NonNegativeFloat, UnitInterval
from .base import MethodContext, check_finite, epoch_batches, keepers, step


def neggrad_plus_loss(model: nn.Module, x_r: torch.Tensor, y_r: torch.Tensor,
                      x_f: torch.Tensor, y_f: torch.Tensor, beta: float) -> torch.Tensor:
    return beta * F.cross_entropy(model(x_r), y_r) - (1 - beta) * F.cross_entropy(model(x_f), y_f)


def unlearn(model: nn.Module, ctx: MethodContext, *, epochs: Epochs, lr: LearningRate,
            beta: UnitInterval = 0.95, momentum: Momentum = 0.0,
            weight_decay: NonNegativeFloat = 0.0, retain_batch_size: BatchSize = 128,
            forget_batch_size: BatchSize = 64) -> nn.Module:
    x, y = ctx.data.train_x, ctx.data.train_y
    retain, forget = ctx.split.retain.to(ctx.device), ctx.split.forget.to(ctx.device)
    g = torch.Generator().manual_seed(ctx.seed + 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                          weight_decay=weight_decay)
    guards = keepers(ctx)
    model.train()
    for epoch in range(epochs):
        pairs = zip(epoch_batches(retain, retain_batch_size, g),
                    cycle(list(epoch_batches(forget, forget_batch_size, g))))
        for r, f in pairs:
            loss = neggrad_plus_loss(model, x[r], y[r], x[f], y[f], beta)
            step(model, opt, loss, r, guards)
        check_finite(loss, "neggrad_plus", epoch)
    model.eval()
    return model

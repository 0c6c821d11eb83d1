"""Error-minimising-maximising noise ("M-M"), the first zero-shot method of Chundawat et al.,
"Zero-Shot Machine Unlearning" (IEEE TIFS 2023): no training sample at all. For each forget
class an error-*maximising* noise batch (UNSIR's), for each retained class an
error-*minimising* one (argmin_N CE(f(N), c) + λ‖N‖², a proxy for that class's data); then one
impair epoch on both kinds of noise at a high learning rate and one repair epoch on the
error-minimising noise only.

The paper's authors published no code for M-M (ayushkumartarun/zero-shot-unlearning holds
GKT only); this follows the paper's description with UNSIR's reference settings and noise
loader (see `unsir.py`): noise batch 256 per class, Adam lr 0.1 for 40 steps, λ = 0.1, 20
copies, impair Adam lr 0.02, repair Adam lr 0.01, batch 256, one epoch each. ``mode``
as in `unsir`: ``reference`` keeps the loader's channel-count loop (C noise images per copy),
``fixed`` uses the whole batch. `access: zero_shot`: the method reads no data.
"""

from __future__ import annotations

import torch
from torch import nn

from ..params import BatchSize, Epochs, LearningRate, NonNegativeFloat, PositiveInt
from .base import MethodContext, MethodOutput
from .noise import NoiseMode, impair_or_repair, learn_noise, noisy_copies

SALT = 0x3303


def unlearn(model: nn.Module, ctx: MethodContext, *, noise_batch: PositiveInt = 256,
            noise_steps: PositiveInt = 40, noise_lr: LearningRate = 0.1,
            l2: NonNegativeFloat = 0.1, copies: PositiveInt = 20,
            impair_lr: LearningRate = 0.02, repair_lr: LearningRate = 0.01,
            impair_epochs: Epochs = 1, repair_epochs: Epochs = 1,
            batch_size: BatchSize = 256, mode: NoiseMode = "reference") -> MethodOutput:
    device = next(model.parameters()).device
    parts: dict[bool, list[tuple[torch.Tensor, torch.Tensor]]] = {True: [], False: []}
    for c in range(ctx.num_classes):
        forget = c in ctx.forget_classes
        noise = learn_noise(model, c, ctx.input_shape, batch=noise_batch, steps=noise_steps,
                            lr=noise_lr, l2=l2, maximise=forget, seed=ctx.seed + SALT + c)
        samples = noisy_copies(noise, copies, mode)
        parts[forget].append((samples, torch.full((len(samples),), c, dtype=torch.long,
                                                  device=device)))
    proxy_x = torch.cat([x for x, _ in parts[False]])
    proxy_y = torch.cat([y for _, y in parts[False]])
    impair_x = torch.cat([x for x, _ in parts[True]] + [proxy_x])
    impair_y = torch.cat([y for _, y in parts[True]] + [proxy_y])
    impair_or_repair(model, impair_x, impair_y, lr=impair_lr, batch_size=batch_size,
                epochs=impair_epochs, seed=ctx.seed + SALT, desc="M-M impair", masks=ctx.masks)
    impair_or_repair(model, proxy_x, proxy_y, lr=repair_lr, batch_size=batch_size,
                epochs=repair_epochs, seed=ctx.seed + SALT + 1, desc="M-M repair",
                masks=ctx.masks)
    return MethodOutput(model, extras={"noise_samples": float(len(impair_x))})

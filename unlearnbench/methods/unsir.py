"""UNSIR (Tarun et al., "Fast yet effective machine unlearning", IEEE TNNLS 2023): learn an
error-maximising noise batch per forget class, then one *impair* epoch on noise ∪ a retain
subset at a high learning rate and one *repair* epoch on the retain subset.

Reference: vikram2000b/Fast-Machine-Unlearning, "Machine Unlearning.ipynb" (CIFAR-10,
ResNet-18), whose numbers are the defaults: noise batch 256 ~ N(0, 1) per forget class,
Adam lr 0.1 for 5 x 8 = 40 steps on −CE(f(N), c) + 0.1 · mean_i ‖N_i‖²; 20 copies of the noise;
the first 1,000 training samples of each retained class; impair: Adam lr 0.02, 1 epoch, batch
256; repair: Adam lr 0.01, 1 epoch, batch 256 (the model in training mode throughout, as in
the reference, also while the noise is learnt).

``mode: reference`` (default) keeps the reference loader's bug: it loops over the channel
count of the first image instead of the batch size, so only the first C noise images of each
copy enter training (1 per copy on MNIST); ``mode: fixed`` uses the whole batch. The noise is
labelled with its class, as in bad-teaching-unlearning's `UNSIR_create_noisy_loader` (the
Fast-Machine-Unlearning notebook labels every class's noise `class_num = 0`, a leftover that
is wrong for any forget class but 0).
"""

from __future__ import annotations

import torch
from torch import nn

from ..params import BatchSize, Epochs, LearningRate, NonNegativeFloat, PositiveInt
from .base import MethodContext, MethodOutput
from .noise import NoiseMode, first_per_class, impair_or_repair, learn_noise, noisy_copies

SALT = 0x0757


def unlearn(model: nn.Module, ctx: MethodContext, *, noise_batch: PositiveInt = 256,
            noise_steps: PositiveInt = 40, noise_lr: LearningRate = 0.1,
            l2: NonNegativeFloat = 0.1, copies: PositiveInt = 20,
            retain_per_class: PositiveInt = 1000, impair_lr: LearningRate = 0.02,
            repair_lr: LearningRate = 0.01, impair_epochs: Epochs = 1,
            repair_epochs: Epochs = 1, batch_size: BatchSize = 256,
            mode: NoiseMode = "reference") -> MethodOutput:
    x, y = ctx.data.train_x, ctx.data.train_y
    retain = first_per_class(y, ctx.split.retain.to(y.device), retain_per_class,
                             ctx.num_classes)
    noises, labels = [], []
    for i, c in enumerate(ctx.forget_classes):
        noise = learn_noise(model, c, ctx.input_shape, batch=noise_batch, steps=noise_steps,
                            lr=noise_lr, l2=l2, maximise=True, seed=ctx.seed + SALT + i)
        noises.append(noisy_copies(noise, copies, mode))
        labels.append(torch.full((len(noises[-1]),), c, dtype=torch.long, device=y.device))
    impair_x = torch.cat([*noises, x[retain]])
    impair_y = torch.cat([*labels, y[retain]])
    impair_or_repair(model, impair_x, impair_y, lr=impair_lr, batch_size=batch_size,
                epochs=impair_epochs, seed=ctx.seed + SALT, desc="unsir impair",
                masks=ctx.masks)
    impair_or_repair(model, x[retain], y[retain], lr=repair_lr, batch_size=batch_size,
                epochs=repair_epochs, seed=ctx.seed + SALT + 1, desc="unsir repair",
                masks=ctx.masks)
    return MethodOutput(model, extras={"noise_samples": float(sum(len(n) for n in noises)),
                                       "retain_samples": float(len(retain))})

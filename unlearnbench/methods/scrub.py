"""SCRUB (Kurmanji et al., NeurIPS 2023; meghdadk/SCRUB): the student (a copy of the original)
moves away from the teacher (the original, frozen, eval mode) on D_f and stays close to it on
D_r. Epoch e = 1..E (reference: the notebooks' SCRUB cell and ``train_distill`` in
thirdparty/repdistiller/helper/loops.py):

    lr_e = lr · decay^#{milestones m : e > m}
    if e ≤ msteps: one pass over D_f, loss −KL_T(teacher ‖ student)              (max-steps)
    one pass over D_r, loss γ·CE(student) + α·KL_T(teacher ‖ student)            (min-steps)

with KL_T = T² · Σ p_t^T log(p_t^T / p_s^T) / batch (``DistillKL``), one optimiser for both
passes, the student in train mode.

The reference ships two settings (its notebooks):

    small (small_scale_unlearning.ipynb; CIFAR-5 / Lacuna-5, a few hundred images):
        Adam lr 5e-4, weight decay 0.1, E = 10, msteps 3, T = 2, γ = 1, α = 0.5,
        lr ×0.1 after epochs 5, 8, 9; retain batches 32, forget batches 64
    large (large_scale_unlearning.ipynb; CIFAR-10 / Lacuna-10, 50,000 images):
        SGD lr 5e-4, momentum 0.9, weight decay 5e-4, E = 3, msteps 2, T = 4, γ = 0.99,
        α = 0.001, lr ×0.1 after epochs 3, 5, 9; retain batches 256, forget batches 512

``setting: auto`` picks small for training sets of at most ``SMALL_SCALE_MAX`` images (digits,
synthetic, mnist_5k) and large otherwise (Fashion-MNIST, MNIST, CIFAR, SVHN); every number can
be overridden on its own.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..params import (
    BatchSize,
    Epochs,
    LearningRate,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
)
from ..training import StepObserver
from .base import MethodContext, check_finite, epoch_batches, keepers, step

# Between the reference's small (~600 images) and large (50,000) training sets.
SMALL_SCALE_MAX = 10_000


@dataclass(frozen=True)
class Setting:
    optimizer: Literal["adam", "sgd"]
    lr: float
    weight_decay: float
    epochs: int
    msteps: int
    temperature: float
    gamma: float
    alpha: float
    milestones: tuple[int, ...]
    retain_batch_size: int
    forget_batch_size: int
    momentum: float = 0.9
    decay: float = 0.1


SETTINGS = {
    "small": Setting("adam", 5e-4, 0.1, 10, 3, 2.0, 1.0, 0.5, (5, 8, 9), 32, 64),
    "large": Setting("sgd", 5e-4, 5e-4, 3, 2, 4.0, 0.99, 0.001, (3, 5, 9), 256, 512),
}


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               temperature: float) -> torch.Tensor:
    """The reference's DistillKL: T² · KL(softmax(t/T) ‖ softmax(s/T)), summed, per sample."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="sum") * temperature**2 / len(student_logits)


def lr_at(epoch: int, setting: Setting) -> float:
    """The learning rate of 1-based ``epoch`` (the reference's ``adjust_learning_rate``)."""
    return setting.lr * setting.decay ** sum(epoch > m for m in setting.milestones)


def scrub_pass(student: nn.Module, teacher: nn.Module, x: torch.Tensor, y: torch.Tensor,
               batches: list[torch.Tensor], optimiser: torch.optim.Optimizer, setting: Setting,
               split: Literal["maximize", "minimize"],
               guards: Sequence[StepObserver] = ()) -> torch.Tensor:
    """One pass over ``batches`` (the reference's ``train_distill``); returns the last loss."""
    student.train()
    teacher.eval()
    loss = torch.zeros(())
    for batch in batches:
        logits = student(x[batch])
        with torch.no_grad():
            target = teacher(x[batch])
        kl = distill_kl(logits, target, setting.temperature)
        if split == "maximize":
            loss = -kl
        else:
            loss = setting.gamma * F.cross_entropy(logits, y[batch]) + setting.alpha * kl
        step(student, optimiser, loss, batch, guards)
    return loss


def make_optimiser(model: nn.Module, setting: Setting) -> torch.optim.Optimizer:
    if setting.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=setting.lr,
                                weight_decay=setting.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=setting.lr, momentum=setting.momentum,
                           weight_decay=setting.weight_decay)


def resolve_setting(name: str, train_size: int, **overrides: object) -> Setting:
    """The named setting (``auto``: by training-set size) with the non-null overrides."""
    if name == "auto":
        name = "small" if train_size <= SMALL_SCALE_MAX else "large"
    return replace(SETTINGS[name], **{k: v for k, v in overrides.items() if v is not None})


def unlearn(model: nn.Module, ctx: MethodContext, *,
            setting: Literal["auto", "small", "large"] = "auto",
            epochs: Epochs | None = None, msteps: NonNegativeInt | None = None,
            optimizer: Literal["adam", "sgd"] | None = None, lr: LearningRate | None = None,
            weight_decay: NonNegativeFloat | None = None,
            temperature: PositiveFloat | None = None, gamma: NonNegativeFloat | None = None,
            alpha: NonNegativeFloat | None = None, retain_batch_size: BatchSize | None = None,
            forget_batch_size: BatchSize | None = None) -> nn.Module:
    x, y = ctx.data.train_x, ctx.data.train_y
    chosen = resolve_setting(setting, len(x), epochs=epochs, msteps=msteps, optimizer=optimizer,
                             lr=lr, weight_decay=weight_decay, temperature=temperature,
                             gamma=gamma, alpha=alpha, retain_batch_size=retain_batch_size,
                             forget_batch_size=forget_batch_size)
    retain, forget = ctx.split.retain.to(ctx.device), ctx.split.forget.to(ctx.device)
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    optimiser = make_optimiser(model, chosen)
    guards = tuple(keepers(ctx))
    g = torch.Generator().manual_seed(ctx.seed + 1)
    for epoch in range(1, chosen.epochs + 1):
        for group in optimiser.param_groups:
            group["lr"] = lr_at(epoch, chosen)
        if epoch <= chosen.msteps:
            batches = list(epoch_batches(forget, chosen.forget_batch_size, g))
            loss = scrub_pass(model, teacher, x, y, batches, optimiser, chosen, "maximize",
                              guards)
            check_finite(loss, "scrub (max-steps)", epoch - 1)
        batches = list(epoch_batches(retain, chosen.retain_batch_size, g))
        loss = scrub_pass(model, teacher, x, y, batches, optimiser, chosen, "minimize", guards)
        check_finite(loss, "scrub", epoch - 1)
    model.eval()
    return model

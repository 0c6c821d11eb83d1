"""Bad Teacher (Chundawat et al., "Can Bad Teaching Induce Forgetting?", AAAI 2023): the
student, a copy of the original, is distilled towards a *competent* teacher (the original) on
retain samples and towards an *incompetent* teacher (a randomly initialised model of the same
architecture) on forget samples:

    L = KL( t ‖ softmax(s / T) ),  t = l · softmax(T_d / T) + (1 − l) · softmax(T_s / T)

with l = 1 for a forget sample and 0 for a retain sample.

Reference: vikram2000b/bad-teaching-unlearning `unlearn.py` (`UnlearnerLoss`,
`blindspot_unlearner`) and its notebook: Adam lr 1e-4, temperature 1, one epoch, batch 256 over
D_f ∪ a random 30 % of D_r, shuffled; the student in training mode, both teachers in eval
mode. ``mode: reference`` (default) keeps F.kl_div's default reduction 'mean', which divides
by the batch size *and* the class count (PyTorch warns that it is not the KL divergence);
``mode: fixed`` uses 'batchmean'. Under Adam the two differ only through Adam's ε.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..params import BatchSize, Epochs, LearningRate, OpenUnit, PositiveFloat
from .base import MethodContext, MethodOutput, adam_epochs

SALT = 0xBAD7


def bad_teacher_loss(student_logits: torch.Tensor, is_forget: torch.Tensor,
                     competent_logits: torch.Tensor, incompetent_logits: torch.Tensor,
                     temperature: float, reduction: str = "mean") -> torch.Tensor:
    """The reference's `UnlearnerLoss`: KL from the label-mixed teacher distribution."""
    flag = is_forget.float().unsqueeze(1)
    target = flag * F.softmax(incompetent_logits / temperature, dim=1) \
        + (1 - flag) * F.softmax(competent_logits / temperature, dim=1)
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    if reduction == "mean":  # F.kl_div's default: ÷ N·C (spelt out: PyTorch warns about it)
        return F.kl_div(log_s, target, reduction="sum") / log_s.numel()
    return F.kl_div(log_s, target, reduction=reduction)


def unlearn(model: nn.Module, ctx: MethodContext, *, retain_fraction: OpenUnit = 0.3,
            epochs: Epochs = 1, lr: LearningRate = 1e-4, batch_size: BatchSize = 256,
            temperature: PositiveFloat = 1.0,
            mode: Literal["reference", "fixed"] = "reference") -> MethodOutput:
    x = ctx.data.train_x
    competent = copy.deepcopy(model).eval()
    with torch.random.fork_rng(devices=[]):  # the incompetent teacher's own init
        torch.manual_seed(ctx.seed + SALT)
        incompetent = ctx.build_model().eval()
    g = torch.Generator().manual_seed(ctx.seed + SALT)
    retain, forget = ctx.split.retain, ctx.split.forget
    subset = retain[torch.randperm(len(retain), generator=g)[: int(retain_fraction
                                                                    * len(retain))]]
    rows = torch.cat([forget, subset]).to(x.device)
    is_forget = torch.cat([torch.ones(len(forget)), torch.zeros(len(subset))]).to(x.device)
    reduction = "mean" if mode == "reference" else "batchmean"

    def loss(batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(x.device)
        xb = x[rows[batch]]
        with torch.no_grad():
            full, blind = competent(xb), incompetent(xb)
        return bad_teacher_loss(model(xb), is_forget[batch], full, blind, temperature,
                                reduction)

    adam_epochs(model, len(rows), loss, lr=lr, batch_size=batch_size, epochs=epochs,
                seed=ctx.seed + SALT + 1, desc="bad_teacher", masks=ctx.masks)
    return MethodOutput(model, extras={"retain_subset": float(len(subset))})

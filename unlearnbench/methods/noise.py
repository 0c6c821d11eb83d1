"""Helpers shared by `unsir` and `unsir_zero_shot` (not a method: there is no
conf/method/noise.yaml): UNSIR's learnable noise batches and the plain Adam loop of its impair
and repair steps.

Reference: vikram2000b/Fast-Machine-Unlearning ("Machine Unlearning.ipynb": the `Noise`
module, its training loop, the impair and repair cells) and vikram2000b/bad-teaching-unlearning
`unlearn.py` (`UNSIR_noise`, `UNSIR_noise_train`, `UNSIR_create_noisy_loader`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .base import adam_epochs

NoiseMode = Literal["reference", "fixed"]


def learn_noise(model: nn.Module, label: int, shape: tuple[int, ...], *, batch: int,
                steps: int, lr: float, l2: float, maximise: bool, seed: int) -> torch.Tensor:
    """A noise batch N (batch x shape), drawn from N(0, 1) and trained with Adam(lr) for
    ``steps`` steps on ∓CE(f(N), label) + l2 · mean_i ‖N_i‖²: error-maximising (UNSIR, the
    forget classes) or, with ``maximise=False``, error-minimising (M-M's retain proxies).

    As in the reference, the model stays in training mode (its batch-norm layers normalise
    with the noise batch's statistics and update their running statistics); its weights are
    not changed."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, *shape, generator=g).to(device).requires_grad_(True)
    opt = torch.optim.Adam([noise], lr=lr)
    labels = torch.full((batch,), label, dtype=torch.long, device=device)
    sign = -1.0 if maximise else 1.0
    model.train()
    for _ in range(steps):
        loss = sign * F.cross_entropy(model(noise), labels) \
            + l2 * noise.pow(2).sum(dim=tuple(range(1, noise.dim()))).mean()
        opt.zero_grad(set_to_none=True)
        (grad,) = torch.autograd.grad(loss, [noise])
        noise.grad = grad
        opt.step()
    return noise.detach()


def noisy_copies(noise: torch.Tensor, copies: int, mode: NoiseMode) -> torch.Tensor:
    """The noise samples that enter training: ``copies`` copies of the batch.

    ``reference``: the reference loader's loop `for i in range(batch[0].size(0))` runs over
    the first image's *channel* count instead of the batch size, so each copy adds only the
    first C noise images (1 for MNIST, 3 for CIFAR). ``fixed``: every image of the batch."""
    per_copy = noise.shape[1] if mode == "reference" else len(noise)
    return noise[:per_copy].repeat(copies, *([1] * (noise.dim() - 1)))


def first_per_class(labels: torch.Tensor, indices: torch.Tensor, per_class: int,
                    num_classes: int) -> torch.Tensor:
    """The first ``per_class`` of ``indices`` (in their order) of each class, as the reference
    takes `classwise_train[c][:num_samples]` of each retained class."""
    chosen = [indices[labels[indices] == c][:per_class] for c in range(num_classes)]
    return torch.cat(chosen).sort().values


def impair_or_repair(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float,
                     batch_size: int, epochs: int, seed: int, desc: str,
                     masks: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """The reference's impair/repair loop: Adam, cross-entropy, shuffled batches."""
    def loss(rows: torch.Tensor) -> torch.Tensor:
        rows = rows.to(x.device)
        return F.cross_entropy(model(x[rows]), y[rows])

    return adam_epochs(model, len(x), loss, lr=lr, batch_size=batch_size, epochs=epochs,
                       seed=seed, desc=desc, masks=masks)

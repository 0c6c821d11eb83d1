"""The loop every generative unlearning method shares, and the references' recipes.

Both reference implementations train on one shuffled dataset holding as many retain images as
forget images (oversampled to balance) and weight each image's loss by its split, so a batch
is about half forget, half retain; here each batch is exactly half and half, and a method's
objective is ``retain + alpha * forget`` (``- alpha`` for max_loss) of per-split means.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..training import progress_bar
from .base import Draw, InpaintingModel
from .training import check_finite, param_groups

OPTIMIZERS = ("adamw", "adam")
MODES = ("reference", "fixed")


@dataclass(frozen=True)
class UnlearnRecipe:
    """Optimiser and schedule of an unlearning run. ``warmup_epochs`` of linear warm-up, then
    a half-cycle cosine to 0 (MAGE's `lr_sched`); ``cosine=False`` keeps ``lr`` constant
    after the warm-up (Palette). ``max_forget`` caps the forget images used (a seeded random
    subset; the references unlearn on 100-120 images per forget class of ImageNet)."""

    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "adamw"
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_epochs: float = 0.0
    cosine: bool = True
    grad_clip: float | None = None
    max_forget: int | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("method.optimizer", self.optimizer, ", ".join(OPTIMIZERS))
        if self.epochs < 1:
            raise ConfigError("method.epochs", self.epochs, "a positive integer")
        if self.batch_size < 2 or self.batch_size % 2:
            raise ConfigError("method.batch_size", self.batch_size,
                              "an even integer >= 2 (half forget, half retain)")
        if not self.lr > 0:
            raise ConfigError("method.lr", self.lr, "a positive number")
        if self.max_forget is not None and self.max_forget < 1:
            raise ConfigError("method.max_forget", self.max_forget, "a positive integer or null")

    def lr_at(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            return self.lr * epoch / self.warmup_epochs
        if not self.cosine:
            return self.lr
        span = max(self.epochs - self.warmup_epochs, 1e-12)
        return 0.5 * self.lr * (1 + math.cos(math.pi * (epoch - self.warmup_epochs) / span))

    def with_overrides(self, **overrides: Any) -> UnlearnRecipe:
        """The recipe with the keys given (None values are ignored)."""
        known = set(self.__dataclass_fields__)
        for key in overrides:
            if key not in known:
                raise ConfigError(f"method.{key}", overrides[key], ", ".join(sorted(known)))
        given = {k: (tuple(v) if k == "betas" else v) for k, v in overrides.items()
                 if v is not None}
        return replace(self, **given)


# MAGE fork (`main_unlearn.py`, README): 4 GPUs x 32 images, lr = blr 1e-4 x 128 / 256,
# AdamW betas (0.9, 0.95), weight decay 0.05, 6 epochs with 5 of warm-up, gradient clip 3.0.
# Its baselines (`main_baseline.py`) use 16 images per GPU: lr 1e-4 x 64 / 256.
# Palette fork (`unlearn.py`, config `inpainting_places2_unlearn.json`): 8 GPUs x 12 images,
# Adam lr 5e-5 without weight decay, constant, 3 epochs (its loop runs n_epoch + 1 = 3), no clip.
REFERENCE_RECIPES: dict[tuple[str, str], UnlearnRecipe] = {
    ("mage", "i2i"): UnlearnRecipe(epochs=6, batch_size=128, lr=5e-5, warmup_epochs=5,
                                   grad_clip=3.0),
    ("mage", "baseline"): UnlearnRecipe(epochs=6, batch_size=64, lr=2.5e-5, warmup_epochs=5,
                                        grad_clip=3.0),
    ("palette", "i2i"): UnlearnRecipe(epochs=3, batch_size=96, lr=5e-5, optimizer="adam",
                                      weight_decay=0.0, betas=(0.9, 0.999), cosine=False),
}
REFERENCE_RECIPES[("palette", "baseline")] = REFERENCE_RECIPES[("palette", "i2i")]


def reference_recipe(model: InpaintingModel, kind: str, **overrides: Any) -> UnlearnRecipe:
    """The reference's recipe for this model's family (``kind`` = "i2i" or "baseline"),
    with ``overrides`` (a scaled-down run's epochs, lr, ...)."""
    return REFERENCE_RECIPES[(model.family, kind)].with_overrides(**overrides)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError("method.mode", mode, ", ".join(MODES))


def forget_term_rows(batch: Batch, model: InpaintingModel, mode: str) -> slice:
    """The images the forget term of `retain_label` and `random_encoder` applies to. The MAGE
    fork's `engine_baseline.compute_loss` weights both terms by (1 + label), so its forget term
    lands on the retain images (``mode=reference``); the Palette fork's weights are right."""
    return batch.retain if mode == "reference" and model.family == "mage" else batch.forget


def feature_l2(student: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
    """Per-image mean squared difference, summed over feature levels, shape (B,): MAGE's
    `mean((latent - guide) ** 2, dim=(1, 2))`; the Palette fork sums its levels' MSEs."""
    return sum((s - t).pow(2).flatten(1).mean(1) for s, t in zip(student, target, strict=True))


@dataclass(frozen=True)
class Batch:
    """One step's images: the first half forget, the second half retain, and the draw."""

    x: torch.Tensor
    draw: Draw
    n_forget: int

    @property
    def forget(self) -> slice:
        return slice(0, self.n_forget)

    @property
    def retain(self) -> slice:
        return slice(self.n_forget, len(self.x))


Objective = Callable[[InpaintingModel, InpaintingModel, Batch, torch.Generator], torch.Tensor]


def split_mean(per_image: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(retain mean, forget mean) of a per-image loss."""
    return per_image[batch.retain].mean(), per_image[batch.forget].mean()


def run_unlearning(
    model: InpaintingModel,
    original: InpaintingModel,
    forget_x: torch.Tensor,
    retain_x: torch.Tensor,
    objective: Objective,
    recipe: UnlearnRecipe,
    params: list[nn.Parameter],
    *,
    seed: int,
    device: torch.device | str | None = None,
    progress: bool = False,
    desc: str = "unlearn",
) -> dict[str, float]:
    """Update ``params`` of ``model`` in place; ``original`` is the frozen teacher. An epoch
    is one pass over the (capped) forget images, each batch paired with as many retain images
    drawn without replacement (reshuffled when used up). Returns the last loss and the steps."""
    device = torch.device(device) if device is not None else forget_x.device
    if len(forget_x) == 0 or len(retain_x) == 0:
        raise ConfigError("scenario.forget_classes", "(empty split)",
                          "forget and retain images must both be present")
    model.to(device)
    # The teacher is only ever called under no_grad; its requires_grad flags are left alone so
    # that later copies of the caller's original stay trainable.
    original.to(device).eval()
    g = torch.Generator().manual_seed(seed)
    if recipe.max_forget is not None and len(forget_x) > recipe.max_forget:
        forget_x = forget_x[torch.randperm(len(forget_x), generator=g)[: recipe.max_forget]]
    forget_x, retain_x = forget_x.to(device), retain_x.to(device)
    half = recipe.batch_size // 2
    steps_per_epoch = math.ceil(len(forget_x) / half)
    total = recipe.epochs * steps_per_epoch
    opt_cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(param_groups(params, recipe.weight_decay), lr=recipe.lr, betas=recipe.betas)
    retain_order = torch.randperm(len(retain_x), generator=g)
    retain_pos, value = 0, float("nan")
    model.train()
    with progress_bar(progress) as bar:
        task = bar.add_task(desc, total=total, info="")
        for step in range(total):
            if step % steps_per_epoch == 0:
                forget_order = torch.randperm(len(forget_x), generator=g)
            within = step % steps_per_epoch
            f_idx = forget_order[within * half : (within + 1) * half]
            if retain_pos + half > len(retain_x):
                retain_order, retain_pos = torch.randperm(len(retain_x), generator=g), 0
            r_idx = retain_order[retain_pos : retain_pos + half]
            retain_pos += half
            x = torch.cat([forget_x[f_idx.to(device)], retain_x[r_idx.to(device)]])
            batch = Batch(x=x, draw=model.draw(x, g), n_forget=len(f_idx))
            for group in opt.param_groups:
                group["lr"] = recipe.lr_at(step / steps_per_epoch)
            loss = objective(model, original, batch, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            opt.step()
            if step % 20 == 0 or step == total - 1:
                value = check_finite(loss, desc, step)
                bar.update(task, info=f"loss {value:.4f}")
            bar.update(task, advance=1)
    model.eval()
    return {"final_loss": value, "steps": float(total)}

"""One plain loop trains every inpainting model (original: all classes; retrain: retain only)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..params import BatchSize, Epochs, LearningRate, Momentum, NonNegativeFloat, PositiveFloat
from ..training import DivergenceError, progress_bar, stopwatch
from .base import InpaintingModel


@dataclass(frozen=True)
class GeneratorRecipe:
    """How a generator is trained: AdamW with linear warm-up then cosine decay, as MAE, MAGE
    and most diffusion code do. ``epochs`` is per stage (the VQ model has two)."""

    epochs: tuple[Epochs, ...]
    batch_size: BatchSize = 128
    lr: LearningRate = 1e-3
    weight_decay: NonNegativeFloat = 0.05
    warmup_fraction: Momentum = 0.05  # [0, 1)
    grad_clip: PositiveFloat = 1.0

    def __post_init__(self) -> None:
        if not self.epochs or any(e < 1 for e in self.epochs):
            raise ConfigError("train.epochs", list(self.epochs), "positive integers, one per stage")
        if self.batch_size < 1:
            raise ConfigError("train.batch_size", self.batch_size, "a positive integer")
        if not self.lr > 0:
            raise ConfigError("train.lr", self.lr, "a positive number")

    @classmethod
    def from_cfg(cls, cfg: Any) -> GeneratorRecipe:
        """The recipe of a `train` node (conf/train/generative.yaml)."""
        fields = {k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg}
        fields["epochs"] = tuple(int(e) for e in fields["epochs"])
        return cls(**fields)

    def lr_at(self, progress: float) -> float:
        """Learning rate at ``progress`` in [0, 1] of a stage."""
        if progress < self.warmup_fraction:
            return self.lr * progress / self.warmup_fraction
        rest = (progress - self.warmup_fraction) / max(1e-12, 1 - self.warmup_fraction)
        return 0.5 * self.lr * (1 + math.cos(math.pi * rest))


def param_groups(params: list[nn.Parameter], weight_decay: float) -> list[dict]:
    """No weight decay on biases, norms and embeddings' 1-D vectors (timm's
    `add_weight_decay`, used by MAE and MAGE)."""
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def check_finite(loss: torch.Tensor, desc: str, step: int) -> float:
    value = loss.item()
    if not math.isfinite(value):
        raise DivergenceError(f"{desc}: non-finite loss at step {step}")
    return value


def train_generator(
    model: InpaintingModel,
    images: torch.Tensor,
    indices: torch.Tensor | None,
    recipe: GeneratorRecipe,
    *,
    seed: int,
    progress: bool = False,
    desc: str = "train",
) -> float:
    """Train ``model`` in place on ``images[indices]`` ((N, 1, 32, 32) in [0, 1], on the
    device); returns wall-clock seconds. Data order, masks and noise come from one generator
    seeded by ``seed``, so CPU runs are reproducible."""
    if len(recipe.epochs) != len(model.stages):
        raise ConfigError("train.epochs", list(recipe.epochs),
                          f"{len(model.stages)} value(s), one per stage {list(model.stages)}")
    device = images.device
    model.to(device)
    indices = torch.arange(len(images)) if indices is None else indices.cpu()
    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(indices) / recipe.batch_size)
    model.train()
    with stopwatch(device) as clock, progress_bar(progress) as bar:
        for stage, epochs in zip(model.stages, recipe.epochs, strict=True):
            params = model.stage_parameters(stage)
            opt = torch.optim.AdamW(param_groups(params, recipe.weight_decay), lr=recipe.lr,
                                    betas=(0.9, 0.95))
            total = epochs * steps_per_epoch
            task = bar.add_task(f"{desc} {stage}", total=total, info="")
            for step in range(total):
                if step % steps_per_epoch == 0:
                    order = indices[torch.randperm(len(indices), generator=g)]
                within = step % steps_per_epoch
                batch = order[within * recipe.batch_size : (within + 1) * recipe.batch_size]
                for group in opt.param_groups:
                    group["lr"] = recipe.lr_at(step / total)
                loss = model.training_loss(images[batch.to(device)], g, stage)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, recipe.grad_clip)
                opt.step()
                if step % 50 == 0 or step == total - 1:
                    value = check_finite(loss, f"{desc} {stage}", step)
                    bar.update(task, info=f"loss {value:.4f}")
                bar.update(task, advance=1)
    model.eval()
    return clock["seconds"]

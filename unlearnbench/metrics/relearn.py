"""The retain-only relearn attack (tamper test; Siddiqui et al., "From Dormant to Deleted",
NeurIPS 2025): fine-tune a copy of the model on D_r only — not one forget sample — for a short
fixed budget, then measure what it knows of the forget set again.

    relearn_FA   forget accuracy after relearning: class-wise, accuracy on the test samples of
                 the forgotten classes (FTA after relearning); otherwise accuracy on D_f
                 (100 − UA after relearning)
    relearn_TA   TA after relearning (the attack keeps the model useful)

The retrain's value under the same budget is the reference (``gap_relearn`` in
conf/eval/default.yaml): a model that truly forgot relearns no more than the retrain does.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..context import TrainEnv
from ..params import BatchSize, LearningRate, Momentum, NonNegativeFloat, PositiveInt, Seed
from ..training import DivergenceError, FitOptions, Recipe, accuracy, fit
from .accuracy import test_mask


def attack_rows(retain: torch.Tensor, steps: int, batch_size: int,
                generator: torch.Generator) -> torch.Tensor:
    """``steps · batch_size`` rows of D_r for a budget of ``steps`` SGD steps whatever the size
    of D_r: whole shuffled passes over D_r, the last one cut short."""
    needed = steps * batch_size
    passes = [retain[torch.randperm(len(retain), generator=generator).to(retain.device)]
              for _ in range(-(-needed // len(retain)))]
    return torch.cat(passes)[:needed]


def relearn_metrics(model: nn.Module, env: TrainEnv, batch_size: int, *,
                    steps: PositiveInt = 100, lr: LearningRate = 0.01,
                    momentum: Momentum = 0.9, weight_decay: NonNegativeFloat = 0.0,
                    train_batch_size: BatchSize = 128, seed: Seed = 0) -> dict[str, float]:
    """relearn_FA and relearn_TA of ``model`` after ``steps`` SGD steps on D_r (constant lr,
    data order from ``seed``); the model itself is left untouched."""
    data, split = env.data, env.split
    attacked = copy.deepcopy(model)
    recipe = Recipe(epochs=1, batch_size=train_batch_size, lr=lr, momentum=momentum,
                    weight_decay=weight_decay, scheduler="constant")
    rows = attack_rows(split.retain.to(data.train_x.device), steps, train_batch_size,
                       torch.Generator().manual_seed(seed))
    try:
        fit(attacked, data.train_x, data.train_y, recipe, seed=seed, indices=rows,
            options=FitOptions(desc="relearn attack", progress=env.progress))
    except DivergenceError:  # a model too broken to fine-tune has no relearn score
        return {"relearn_FA": math.nan, "relearn_TA": math.nan}
    keep = test_mask(data, split)
    if split.forget_classes:
        forget_acc = accuracy(attacked, data.test_x[~keep], data.test_y[~keep], batch_size)
    else:
        forget = split.forget.to(data.train_x.device)
        forget_acc = accuracy(attacked, data.train_x[forget], data.train_y[forget], batch_size)
    return {"relearn_FA": forget_acc,
            "relearn_TA": accuracy(attacked, data.test_x[keep], data.test_y[keep], batch_size)}

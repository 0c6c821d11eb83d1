"""Retrain: the gold standard, trained from scratch on D_r with the original's recipe.

The runner does not call this for `method=retrain`: the YAML's ``runner.same_as_role: retrain``
hands over the cached retrained model (trained once per forget set), whose RTE is that
training's recorded wall clock. This function is the same computation, done afresh; a test
checks that it gives the cached weights (bitwise on CPU).
"""

from __future__ import annotations

import torch
from torch import nn

from ..masks import MaskKeeper, apply_masks
from ..training import FitOptions, fit
from .base import MethodContext


def unlearn(model: nn.Module, ctx: MethodContext) -> nn.Module:
    torch.manual_seed(ctx.seed)  # the seed's initialisation, as every reference model
    fresh = ctx.build_model()
    observers = []
    if ctx.masks:  # a sparse retrain keeps the original's mask
        apply_masks(fresh, ctx.masks)
        observers = [MaskKeeper(ctx.masks)]
    fit(fresh, ctx.data.train_x, ctx.data.train_y, ctx.recipe, seed=ctx.seed,
        indices=ctx.split.retain,
        options=FitOptions(desc="retrain", progress=ctx.progress, observers=observers))
    return fresh

"""Retrain: the gold standard, trained from scratch on D_r with the original's recipe.

The runner trains (or loads from the cache) the retrained model once per forget set; this
method hands it over, and its RTE is that training's recorded wall clock.
"""

from __future__ import annotations

import copy

from torch import nn

from .base import MethodOutput, UnlearnContext


def unlearn(model: nn.Module, ctx: UnlearnContext) -> MethodOutput:
    if ctx.retrain is None:
        raise RuntimeError("the runner provides no retrained model")
    return MethodOutput(copy.deepcopy(ctx.retrain), rte_s=ctx.retrain_seconds)

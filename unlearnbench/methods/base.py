"""What every method receives and may return, and the helpers methods share."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..context import EnsembleContext, MethodContext
from ..ensemble import Ensemble, train_ensemble
from ..masks import MaskKeeper
from ..training import FitOptions, Objective, Recipe, Regulariser, fit

__all__ = ["Ensemble", "EnsembleContext", "MethodContext", "MethodOutput", "finetune",
           "finetune_ensemble", "negated_cross_entropy"]

# The fine-tuning data order is drawn from the seed + 1 (the seed itself ordered training).
FINETUNE_SEED_SALT = 1


@dataclass
class MethodOutput:
    """A method's result when it has more to say than the model."""

    model: nn.Module
    rte_s: float | None = None      # set only when the cost was paid outside the timed step
    extras: dict[str, float] = field(default_factory=dict)  # method-specific metric columns
    # Other models the task should report test accuracy for (`<name>_TA` columns, a list is
    # averaged): a method never sees the test set itself.
    extra_models: dict[str, nn.Module | list[nn.Module]] = field(default_factory=dict)


def negated_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Gradient ascent on the loss: descend on its negative."""
    return -F.cross_entropy(logits, labels)


def finetune(
    model: nn.Module,
    ctx: MethodContext,
    indices: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    labels: torch.Tensor | None = None,
    objective: Objective = F.cross_entropy,
    regulariser: Regulariser | None = None,
    desc: str = "unlearn",
    **recipe_overrides: Any,
) -> nn.Module:
    """Run the shared training loop on ``ctx.data`` rows ``indices`` with a constant learning
    rate.

    The batch size, momentum, weight decay and augmentation are the training recipe's, as in
    the reference implementations; ``labels`` replaces the training labels (random labels).
    """
    recipe = _finetune_recipe(ctx, epochs, lr, **recipe_overrides)
    # A sparse model keeps its mask: pruned weights stay exactly zero through every step.
    observers = [MaskKeeper(ctx.masks)] if ctx.masks else []
    fit(model, ctx.data.train_x, ctx.data.train_y if labels is None else labels, recipe,
        seed=ctx.seed + FINETUNE_SEED_SALT, indices=indices,
        options=FitOptions(objective=objective, regulariser=regulariser, desc=desc,
                           progress=ctx.progress, observers=observers))
    return model


def _finetune_recipe(ctx: MethodContext, epochs: int, lr: float, **overrides: Any) -> Recipe:
    return replace(ctx.recipe, epochs=int(epochs), lr=float(lr), scheduler="constant",
                   **overrides)


def finetune_ensemble(
    models: Ensemble,
    ctx: EnsembleContext,
    indices: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    labels: torch.Tensor | None = None,
    objective: Objective = F.cross_entropy,
    desc: str = "unlearn",
) -> Ensemble:
    """``finetune`` for N members at once (``ensemble.train_ensemble``): member k is what
    ``finetune`` makes of it with ``ctx.seed = ctx.seeds[k]``, up to float rounding.
    ``labels``: one labelling for all members ``[n]``, or one per member ``[N, n]``."""
    if ctx.masks:
        raise ValueError("finetune_ensemble: masks (prune-then-unlearn) are not supported")
    per_member = labels is not None and labels.dim() == 2
    trained, _ = train_ensemble(
        ctx.build_model, ctx.data.train_x,
        ctx.data.train_y if labels is None or per_member else labels,
        _finetune_recipe(ctx, epochs, lr), [s + FINETUNE_SEED_SALT for s in ctx.seeds],
        indices_per_member=[indices] * len(ctx.seeds),
        labels_per_member=labels if per_member else None, objective=objective,
        init_states=models, progress=ctx.progress, desc=desc)
    return trained

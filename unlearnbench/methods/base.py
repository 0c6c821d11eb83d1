"""What every method receives and may return, and the helpers methods share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..context import EnsembleContext, MethodContext
from ..ensemble import Ensemble, train_ensemble
from ..masks import MaskKeeper, apply_masks
from ..training import (
    DivergenceError,
    EpochPlan,
    FitOptions,
    Objective,
    Recipe,
    Regulariser,
    StepObserver,
    fit,
)

__all__ = ["Ensemble", "EnsembleContext", "MethodContext", "MethodOutput", "adam_epochs",
           "check_finite", "epoch_batches", "finetune", "finetune_ensemble", "keepers",
           "negated_cross_entropy", "step"]

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
    epoch_plan: EpochPlan | None = None,
    observers: Sequence[StepObserver] = (),
    **recipe_overrides: Any,
) -> nn.Module:
    """Run the shared training loop on ``ctx.data`` rows ``indices`` with a constant learning
    rate.

    The batch size, momentum, weight decay and augmentation are the training recipe's, as in
    the reference implementations; ``labels`` replaces the training labels (random labels);
    ``epoch_plan`` replaces the shuffled epoch over ``indices`` (batch order and labels);
    ``observers`` watch every step (after the sparse-mask keeper).
    """
    recipe = _finetune_recipe(ctx, epochs, lr, **recipe_overrides)
    fit(model, ctx.data.train_x, ctx.data.train_y if labels is None else labels, recipe,
        seed=ctx.seed + FINETUNE_SEED_SALT, indices=indices,
        options=FitOptions(objective=objective, regulariser=regulariser, desc=desc,
                           progress=ctx.progress, observers=[*keepers(ctx), *observers],
                           epoch_plan=epoch_plan))
    return model


def keepers(ctx: MethodContext) -> list[StepObserver]:
    """What every training step of a method must respect: a sparse model keeps its mask
    (pruned weights stay exactly zero through every step)."""
    return [MaskKeeper(ctx.masks)] if ctx.masks else []


def epoch_batches(indices: torch.Tensor, batch_size: int,
                  generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """One pass over ``indices`` in batches (a DataLoader over in-memory rows): shuffled by
    ``generator``, in the given order without one; the last batch may be smaller."""
    if generator is not None:
        indices = indices[torch.randperm(len(indices), generator=generator).to(indices.device)]
    for start in range(0, len(indices), batch_size):
        yield indices[start : start + batch_size]


def step(model: nn.Module, optimiser: torch.optim.Optimizer, loss: torch.Tensor,
         batch: torch.Tensor, guards: Sequence[StepObserver] = ()) -> None:
    """One optimiser step on ``loss`` for a method's own loop, then its guards (``keepers``)."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    for guard in guards:
        guard.after_step(batch, model)


def check_finite(loss: torch.Tensor, desc: str, epoch: int) -> None:
    """Raise DivergenceError on a non-finite loss (read once an epoch: it syncs the device)."""
    if not torch.isfinite(loss.detach()).all():
        raise DivergenceError(f"{desc}: non-finite loss at epoch {epoch + 1}")
def adam_epochs(model: nn.Module, count: int, batch_loss: Callable[[torch.Tensor], torch.Tensor],
                *, lr: float, batch_size: int, epochs: int, seed: int, desc: str,
                masks: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """The reference implementations' plain Adam loop (no weight decay) over ``count`` rows in
    shuffled batches: ``batch_loss(rows)`` gives the loss of a batch of row positions. The
    model trains in training mode; pruned weights stay zero; a non-finite loss raises
    DivergenceError."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(count, generator=g)
        for start in range(0, count, batch_size):
            loss = batch_loss(order[start:start + batch_size])
            if not math.isfinite(loss.item()):
                raise DivergenceError(f"{desc}: non-finite loss at epoch {epoch + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            apply_masks(model, masks)
    model.eval()
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

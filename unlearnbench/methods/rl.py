"""Random labels (RL): fine-tune on D_f with random labels together with D_r, the baseline of
the SalUn paper (Fan et al., ICLR 2024; reference `Classification/unlearn/RL.py` of
OPTML-Group/Unlearn-Saliency, without its saliency mask).

``labels="salun"`` (the reference): each forget sample's label is drawn uniformly from all C
classes, the true one included, and drawn again every epoch. The reference has two loops,
chosen by dataset (``order="auto"``):

- ``forget_first`` (its CIFAR-10 / SVHN loop, RL.py l.109-159): every epoch runs all forget
  batches (shuffled, a fresh label draw per batch) and then all retain batches (shuffled), with
  one optimiser throughout;
- ``mixed`` (its CIFAR-100 / TinyImageNet loop, l.51-107): every epoch redraws the forget
  labels, then runs one shuffled loader over D_f ∪ D_r.

The reference has no loop for other datasets; ``auto`` uses ``forget_first`` for them (the loop
of SalUn's main CIFAR-10 experiments). ``labels="other_class"``: one draw per sample from the
C − 1 wrong classes, kept for every epoch; with ``order="auto"`` one shuffled loader over
D_f ∪ D_r (this project's earlier RL, the same batches and labels as before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from ..params import Epochs, LearningRate
from ..training import EpochPlan
from .base import MethodContext, finetune

MIXED_IN_REFERENCE = ("cifar100", "tinyimagenet")  # the reference's concatenated-loader loop


def random_other_labels(labels: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """A uniformly drawn label different from the true one, for each sample."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, labels.shape, generator=g).to(labels.device)
    return (labels + shift) % num_classes


def uniform_labels(count: int, num_classes: int, g: torch.Generator,
                   device: torch.device) -> torch.Tensor:
    """``count`` labels uniform over all classes (the true one included), as the reference's
    ``torch.randint(0, num_classes, ...)`` / ``np.random.randint(0, num_classes, ...)``."""
    return torch.randint(0, num_classes, (count,), generator=g).to(device)


# The labels a batch of forget rows gets: (rows, the loop's generator) -> labels.
ForgetLabels = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def forget_first_plan(forget: torch.Tensor, retain: torch.Tensor, labels: torch.Tensor,
                      forget_labels: ForgetLabels, batch_size: int) -> EpochPlan:
    """Every epoch: the shuffled forget batches (labels from ``forget_labels``, per batch),
    then the shuffled retain batches with their true ``labels``."""
    def plan(epoch: int, g: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        f_order = forget[torch.randperm(len(forget), generator=g).to(forget.device)]
        r_order = retain[torch.randperm(len(retain), generator=g).to(retain.device)]
        batches = [(b, forget_labels(b, g)) for b in f_order.split(batch_size)]
        return batches + [(b, labels[b]) for b in r_order.split(batch_size)]
    return plan


def mixed_plan(forget: torch.Tensor, retain: torch.Tensor, labels: torch.Tensor,
               forget_labels: ForgetLabels, batch_size: int) -> EpochPlan:
    """Every epoch: the forget labels (``forget_labels`` for all of D_f at once), then one
    shuffled pass over D_f ∪ D_r."""
    everything = torch.cat([forget, retain]).sort().values

    def plan(epoch: int, g: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        epoch_labels = labels.clone()
        epoch_labels[forget] = forget_labels(forget, g)
        order = everything[torch.randperm(len(everything), generator=g).to(everything.device)]
        return [(b, epoch_labels[b]) for b in order.split(batch_size)]
    return plan


def loop_order(labels: str, order: str, dataset: str) -> str:
    """The loop ``order="auto"`` stands for: the reference's per dataset for SalUn labels,
    the earlier mixed loop for ``other_class``."""
    if order != "auto":
        return order
    if labels == "other_class":
        return "mixed"
    return "mixed" if dataset in MIXED_IN_REFERENCE else "forget_first"


LabelRule = Literal["salun", "other_class"]
LoopOrder = Literal["auto", "forget_first", "mixed"]


def random_label_plan(ctx: MethodContext, labels: str, order: str
                      ) -> tuple[torch.Tensor, EpochPlan]:
    """The rows (D_f ∪ D_r) and the epoch plan of random-label unlearning: forget labels by
    ``labels``, batches in the loop ``order`` stands for (shared by RL and SalUn)."""
    forget = ctx.split.forget.to(ctx.device)
    retain = ctx.split.retain.to(ctx.device)
    true_labels = ctx.data.train_y
    forget_labels: ForgetLabels
    if labels == "salun":
        def forget_labels(rows: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            return uniform_labels(len(rows), ctx.num_classes, g, rows.device)
    else:  # one draw from the other classes, kept for every epoch
        drawn = true_labels.clone()
        drawn[forget] = random_other_labels(true_labels[forget], ctx.num_classes, ctx.seed)

        def forget_labels(rows: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            return drawn[rows]
    ordered = loop_order(labels, order, ctx.dataset) == "forget_first"
    make_plan = forget_first_plan if ordered else mixed_plan
    plan = make_plan(forget, retain, true_labels, forget_labels, ctx.recipe.batch_size)
    return torch.cat([forget, retain]), plan


def unlearn(model: nn.Module, ctx: MethodContext, *, epochs: Epochs, lr: LearningRate,
            labels: LabelRule = "salun", order: LoopOrder = "auto") -> nn.Module:
    rows, plan = random_label_plan(ctx, labels, order)
    return finetune(model, ctx, rows, epochs=epochs, lr=lr, epoch_plan=plan, desc="rl")

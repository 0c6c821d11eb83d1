"""Transfer learning from a source model (original, retrain or unlearned) to a target dataset:
the fixed-feature linear probe and the full fine-tune, and the class influence that picks which
source classes to drop.

After Jia et al. (NeurIPS 2023, "Model Sparsity Can Simplify Machine Unlearning", Sec. 6):
unlearning the source classes that hurt a downstream task should transfer as well as
retraining without them ("Prune" in the paper, after Jain et al. 2022, "A Data-Based
Perspective on Transfer Learning") at a fraction of the cost. Their reference repository holds
only the ImageNet class-forgetting step (``main_forget_imagenet.py``); the probe, the fine-tune
and the class choice follow Jain et al.'s code (MadryLab/data-transfer): a class's influence on
the target is the mean target score of source models trained with it minus the mean of those
trained without it, each model trained on a random half of the classes (``pct: 0.5``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .data import Data
from .params import OpenUnit, PositiveInt, Range, Seed
from .training import FitOptions, Recipe, accuracy, fit, predict, stopwatch


@dataclass(frozen=True)
class InfluenceSettings:
    """Jain et al.'s class influence, scaled down: ``models`` source models, each trained on a
    random ``share`` of the classes (their ``pct``), scored by the target linear probe."""

    models: Annotated[int, Range(2, 10_000, hint="an integer >= 2")] = 16
    share: OpenUnit = 0.5
    drop: PositiveInt = 1       # how many of the most harmful classes to drop
    seed: Seed = 0              # subset draws and training seed: the same choice for every job


def _default_probe() -> Recipe:
    return Recipe(epochs=30, batch_size=128, lr=0.1, scheduler="cosine", weight_decay=0.0)


def _default_finetune() -> Recipe:
    return Recipe(epochs=5, batch_size=64, lr=0.01, scheduler="cosine")


@dataclass(frozen=True)
class TransferSettings:
    """The `transfer` node of conf/transfer.yaml, checked by validation.validate_transfer."""

    target: str                                      # a conf/dataset option
    classes: Literal["given", "influence"] = "given"  # scenario.forget_classes, or chosen
    influence: InfluenceSettings = field(default_factory=InfluenceSettings)
    probe: Recipe = field(default_factory=_default_probe)
    finetune: Recipe = field(default_factory=_default_finetune)


def fit_to_source(target: Data, input_shape: tuple[int, int, int]) -> Data:
    """The target images resized (bilinear, antialiased) to the source model's input shape;
    one channel is repeated to three, three are averaged to one."""
    channels, height, width = input_shape

    def resize(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != channels:
            x = x.mean(1, keepdim=True) if channels == 1 else x[:, :1].expand(-1, channels, -1,
                                                                              -1)
        if tuple(x.shape[2:]) != (height, width):
            x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False,
                              antialias=True)
        return x.contiguous()

    return replace(target, train_x=resize(target.train_x), test_x=resize(target.test_x))


def classifier(model: nn.Module) -> tuple[str, nn.Linear]:
    """The classification head: the last Linear layer in module order (as masks.prunable)."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise TypeError(f"{type(model).__name__} has no Linear classifier to replace")
    return layers[-1]


@torch.no_grad()
def features(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The classifier's input for every row of ``x`` (the penultimate representation)."""
    captured: list[torch.Tensor] = []
    handle = classifier(model)[1].register_forward_pre_hook(
        lambda _m, args: captured.append(args[0].detach().float()))
    try:
        predict(model, x, batch_size)
    finally:
        handle.remove()
    return torch.cat(captured) if captured else torch.empty(0, 0, device=x.device)


def _head(in_features: int, num_classes: int, seed: int, device: torch.device) -> nn.Linear:
    torch.manual_seed(seed)  # the same new head for every source model of a seed
    return nn.Linear(in_features, num_classes).to(device)


def linear_probe(model: nn.Module, target: Data, recipe: Recipe, seed: int,
                 progress: bool = False) -> tuple[float, float]:
    """Fixed-feature transfer: a new linear head trained on the frozen source features of the
    target's training set. Returns (target test accuracy %, seconds incl. feature extraction)."""
    with stopwatch(target.train_x.device) as clock:
        train_f, test_f = features(model, target.train_x), features(model, target.test_x)
        head = _head(train_f.shape[1], target.num_classes, seed, train_f.device)
        _fit(head, train_f, target.train_y, recipe, seed, "linear probe", progress)
    return accuracy(head, test_f, target.test_y), clock["seconds"]


def fine_tune(model: nn.Module, target: Data, recipe: Recipe, seed: int,
              progress: bool = False) -> tuple[float, float]:
    """Full fine-tune: a copy of the source model with a new head, every weight trained on the
    target's training set. Returns (target test accuracy %, seconds)."""
    tuned = copy.deepcopy(model)
    name, old = classifier(tuned)
    parent, _, attr = name.rpartition(".")
    setattr(tuned.get_submodule(parent), attr,
            _head(old.in_features, target.num_classes, seed, old.weight.device))
    for p in tuned.parameters():
        p.requires_grad_(True)
    seconds = _fit(tuned, target.train_x, target.train_y, recipe, seed, "fine-tune", progress)
    return accuracy(tuned, target.test_x, target.test_y), seconds


def _fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe, seed: int,
         desc: str, progress: bool) -> float:
    return fit(model, x, y, recipe, seed=seed + 7,
               options=FitOptions(desc=desc, progress=progress))


def class_subsets(num_classes: int, settings: InfluenceSettings) -> list[tuple[int, ...]]:
    """``models`` random subsets of ``share`` of the classes (at least one in, one out)."""
    kept = min(num_classes - 1, max(1, round(settings.share * num_classes)))
    g = torch.Generator().manual_seed(settings.seed * 1_000_003 + 0x1F1)
    return [tuple(sorted(torch.randperm(num_classes, generator=g)[:kept].tolist()))
            for _ in range(settings.models)]


def class_influence(subsets: list[tuple[int, ...]], scores: list[float],
                    num_classes: int) -> list[dict[str, float]]:
    """Per class: mean score of the models trained with it minus the mean of those trained
    without it (Jain et al.'s estimator; NaN when a class was always in or always out)."""
    rows = []
    for c in range(num_classes):
        inside = [s for sub, s in zip(subsets, scores, strict=True) if c in sub]
        outside = [s for sub, s in zip(subsets, scores, strict=True) if c not in sub]
        value = (math.fsum(inside) / len(inside) - math.fsum(outside) / len(outside)
                 if inside and outside else math.nan)
        rows.append({"class": c, "influence": value, "models_with": len(inside),
                     "models_without": len(outside)})
    return rows


def most_harmful(influence: list[dict[str, float]], drop: int) -> tuple[int, ...]:
    """The ``drop`` classes of lowest (most negative) influence: removing them should help."""
    ranked = sorted((r for r in influence if math.isfinite(r["influence"])),
                    key=lambda r: (r["influence"], r["class"]))
    if len(ranked) < drop:
        raise RuntimeError(f"only {len(ranked)} classes have an influence estimate; raise "
                           "transfer.influence.models")
    return tuple(sorted(int(r["class"]) for r in ranked[:drop]))

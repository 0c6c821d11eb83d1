"""What producers, metrics and methods see of a job.

- :class:`TrainEnv` is the whole environment of one job (data with its test set, the forget
  split, the recipe, the seed, the device, how to build a fresh model). Producers and metrics
  get it; methods never do.
- :class:`MethodContext` is a method's view, cut to the ``access`` its YAML declares
  (DESIGN.md, "What a method may see"):

  ``full``         the training set (D_r and D_f) and the split;
  ``forget_only``  D_f only: ``ctx.data`` holds just the forget samples, ``ctx.split.forget``
                   indexes them, and reading ``ctx.split.retain`` raises;
  ``zero_shot``    no training data at all: reading ``ctx.data`` or ``ctx.split`` raises; the
                   model, the forget class ids, the input shape and the class count remain.

  No method ever sees the test set or the retrained model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from .data import Data
from .scenarios import Split
from .training import Recipe

Access = Literal["full", "forget_only", "zero_shot"]
ACCESS_LEVELS: tuple[str, ...] = ("full", "forget_only", "zero_shot")


class AccessError(RuntimeError):
    """A method read a field its declared data access does not allow."""


@dataclass
class TrainEnv:
    """One job's environment: everything that determines a model's training and evaluation."""

    data: Data                       # train and test tensors on the device
    split: Split                     # forget / retain indices into the training set
    recipe: Recipe
    seed: int
    device: torch.device
    model_factory: Callable[[tuple[int, int, int], int], nn.Module]
    progress: bool = True
    log: Callable[[str], None] = print

    def build_model(self) -> nn.Module:
        """A fresh model of the job's architecture on the device (weights from torch's RNG)."""
        return self.model_factory(self.data.input_shape, self.data.num_classes).to(self.device)

    def with_seed(self, seed: int) -> TrainEnv:
        """The same job trained from another seed (ensembles): the forget set stays."""
        return replace(self, seed=seed)


@dataclass(frozen=True)
class TrainData:
    """Training tensors a method may see: no test set."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


class ForgetOnlySplit:
    """The split of a forget-only view: indices into the forget samples; no retain set."""

    def __init__(self, count: int, forget_classes: tuple[int, ...], method: str) -> None:
        self.forget = torch.arange(count)
        self.forget_classes = forget_classes
        self._method = method

    @property
    def retain(self) -> torch.Tensor:
        raise AccessError(f"method {self._method} declares access forget_only: it may not read "
                          "the retain set (ctx.split.retain)")


@dataclass
class MethodContext:
    """Runtime objects a method needs, cut to its access; hyperparameters come from its YAML."""

    method: str
    access: str
    recipe: Recipe
    seed: int
    device: torch.device
    num_classes: int
    input_shape: tuple[int, int, int]
    forget_classes: tuple[int, ...]      # empty unless the scenario forgets whole classes
    build_model: Callable[[], nn.Module]  # a fresh, untrained model of the same architecture
    progress: bool = True
    masks: dict[str, torch.Tensor] | None = None  # prune-then-unlearn: kept weights (True)
    variant: dict[str, Any] = field(default_factory=dict)  # artifacts of a training producer
    _data: TrainData | None = None
    _split: Split | ForgetOnlySplit | None = None

    @property
    def data(self) -> TrainData:
        if self._data is None:
            raise AccessError(f"method {self.method} declares access {self.access}: it may not "
                              "read training data (ctx.data)")
        return self._data

    @property
    def split(self) -> Split | ForgetOnlySplit:
        if self._split is None:
            raise AccessError(f"method {self.method} declares access {self.access}: it may not "
                              "read the forget/retain split (ctx.split)")
        return self._split


@dataclass
class EnsembleContext(MethodContext):
    """The view of a method's vectorised form (``unlearn_ensemble``): the same cut, for N
    members at once. Member k's seed is ``seeds[k]`` (what ``ctx.seed`` is to ``unlearn``);
    ``seed`` stays the job's."""

    seeds: tuple[int, ...] = ()


def method_context(env: TrainEnv, method: str, access: str,
                   masks: dict[str, torch.Tensor] | None = None,
                   variant: dict[str, Any] | None = None,
                   seeds: tuple[int, ...] | None = None) -> MethodContext:
    """The method's view of ``env``, cut to ``access``; with ``seeds``, an
    :class:`EnsembleContext` for N members."""
    if access not in ACCESS_LEVELS:
        raise ValueError(f"unknown access {access!r}")
    data, split = env.data, env.split
    view_data: TrainData | None = None
    view_split: Split | ForgetOnlySplit | None = None
    if access == "full":
        view_data = TrainData(data.train_x, data.train_y, data.num_classes)
        view_split = split
    elif access == "forget_only":
        forget = split.forget.to(data.train_x.device)
        view_data = TrainData(data.train_x[forget], data.train_y[forget], data.num_classes)
        view_split = ForgetOnlySplit(len(forget), split.forget_classes, method)
    fields: dict[str, Any] = dict(
        method=method, access=access, recipe=env.recipe, seed=env.seed, device=env.device,
        num_classes=data.num_classes, input_shape=data.input_shape,
        forget_classes=tuple(split.forget_classes), build_model=env.build_model,
        progress=env.progress, masks=masks, variant=dict(variant or {}),
        _data=view_data, _split=view_split,
    )
    if seeds is not None:
        return EnsembleContext(**fields, seeds=tuple(int(s) for s in seeds))
    return MethodContext(**fields)

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

  No method ever sees the test set or the retrained model. A method may hand intermediate
  models to ``ctx.checkpoint(step, model, **info)``, a write-only sink: the runner evaluates
  them after the method has finished (a learning curve in the job folder), so what they score
  never reaches the method, whatever its access.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
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
    # Set by the runner for metrics that compare against other models (AIN's target, the
    # model-inversion judge): role name ("original", "retrain", "judge") -> that model.
    reference: Callable[[str], nn.Module] | None = None
    # Set per evaluation by `collecting`: what a metric leaves beyond numbers (images), for
    # the task to draw into the job folder. Metrics never write files themselves.
    artifacts: dict[str, np.ndarray] | None = None

    def build_model(self) -> nn.Module:
        """A fresh model of the job's architecture on the device (weights from torch's RNG)."""
        return self.model_factory(self.data.input_shape, self.data.num_classes).to(self.device)

    def with_seed(self, seed: int) -> TrainEnv:
        """The same job trained from another seed (ensembles): the forget set stays."""
        return replace(self, seed=seed)

    def reference_model(self, role: str) -> nn.Module:
        """Another role's model for a metric that needs one (RuntimeError when the runner gave
        none, e.g. a metric called outside a job)."""
        if self.reference is None:
            raise RuntimeError(f"this environment has no reference models (asked for {role})")
        return self.reference(role)


def collecting(env: TrainEnv) -> tuple[TrainEnv, dict[str, np.ndarray]]:
    """``env`` with a fresh artifact sink, and the sink."""
    sink: dict[str, np.ndarray] = {}
    return replace(env, artifacts=sink), sink


Checkpoint = Callable[..., None]  # (step, model, **info) -> None


def _no_checkpoints(step: int, model: nn.Module, **info: float) -> None:
    return None


@dataclass
class CheckpointPoint:
    step: int
    state: dict[str, torch.Tensor]  # a CPU copy of the model's state
    info: dict[str, float]


class CheckpointLog:
    """The runner's checkpoint sink: keeps CPU copies of the models a method hands over;
    returns nothing to the method."""

    def __init__(self) -> None:
        self.points: list[CheckpointPoint] = []

    def __call__(self, step: int, model: nn.Module, **info: float) -> None:
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.points.append(CheckpointPoint(int(step), state, {k: float(v)
                                                              for k, v in info.items()}))


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
    dataset: str                         # the dataset's name (a reference's per-dataset rule)
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
    checkpoint: Checkpoint = _no_checkpoints  # write-only: models scored after the method
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
                   checkpoint: Checkpoint | None = None,
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
        # A method knows D_f, never how the scenario made it (a backdoor's trigger).
        view_split = replace(split, transform=None) if split.transform is not None else split
    elif access == "forget_only":
        forget = split.forget.to(data.train_x.device)
        view_data = TrainData(data.train_x[forget], data.train_y[forget], data.num_classes)
        view_split = ForgetOnlySplit(len(forget), split.forget_classes, method)
    factory, shape, k, device = env.model_factory, data.input_shape, data.num_classes, env.device

    def build_model() -> nn.Module:  # closes over no data (a bound env method would)
        return factory(shape, k).to(device)

    fields: dict[str, Any] = dict(
        method=method, access=access, dataset=data.name, recipe=env.recipe, seed=env.seed,
        device=env.device, num_classes=data.num_classes, input_shape=data.input_shape,
        forget_classes=tuple(split.forget_classes), build_model=build_model,
        progress=env.progress, masks=masks, variant=dict(variant or {}),
        checkpoint=checkpoint or _no_checkpoints, _data=view_data, _split=view_split,
    )
    if seeds is not None:
        return EnsembleContext(**fields, seeds=tuple(int(s) for s in seeds))
    return MethodContext(**fields)

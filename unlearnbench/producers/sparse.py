"""Prune first, then unlearn (Jia et al., NeurIPS 2023): sparse originals and retrains.

A sparsity config (``conf/sparsity/*.yaml``) stacks one of these producers on the dense one:
the original and the retrain become sparse models sharing one mask, and every unlearning
method then runs with that mask held fixed (the mask reaches it as ``ctx.masks``).

Which data each mask depends on (the paper's criterion 1: least dependence on D_f):

- ``synflow``: none at all. Scores are computed on the random initialisation with an all-ones
  input, so the mask is identical for the original and any retrain.
- ``omp``: the whole training set D, D_f included: the magnitudes are those of the dense
  original trained on D. Its rewind point (weights after ``rewind_epoch`` epochs on D) too.
- ``imp``: D, D_f included, more strongly than OMP: every round retrains on D and prunes by the
  resulting magnitudes.

The sparse retrain reuses the original's mask (the reference setup), trained from the seed's
initialisation on D_r; for OMP/IMP the mask is thus the one trace of D_f in it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from torch import nn

from ..context import TrainEnv
from ..errors import ConfigError
from ..masks import MaskKeeper, Masks, apply_masks, density, magnitude_masks, synflow_masks
from ..params import NonNegativeInt, PositiveInt, Range
from ..training import FitOptions, fit
from .base import Lookup, Tensors, load_state
from .dense import role_indices

MASK_PREFIX = "mask::"  # mask tensors sit next to the weights in one safetensors entry
SparsityRate = Annotated[float, Range(0, 1, high_open=True,
                                      hint="a number with 0 <= rate < 1 (e.g. 0.95)")]


class Unpruned:
    """``sparsity=none``: dense models; adds nothing to the stack (and nothing to the keys)."""

    identity = True

    def __init__(self, *, rate: Annotated[float, Range(0, 0, hint=(
            "0 with sparsity=none (choose sparsity=omp, synflow or imp to prune)"))] = 0.0
                 ) -> None:
        self.rate = rate

    def columns(self) -> dict[str, Any]:
        return {"sparsity": "none", "sparsity_rate": 0.0}


class _Stop(Exception):
    """Raised by the rewind observer to end a training run early."""


@dataclass
class _Snapshot:
    """StepObserver: copy the weights after ``step`` optimiser steps, then stop the run."""

    step: int
    state: dict[str, torch.Tensor] | None = None
    seen: int = 0

    def before_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        pass

    def after_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        self.seen += 1
        if self.seen >= self.step:
            self.state = copy.deepcopy(model.state_dict())
            raise _Stop


class Pruned:
    """Base of the sparse producers: the sparse original on D and the sparse retrain on D_r
    with the original's mask, both from the seed's initialisation."""

    name = "pruned"

    def __init__(self, *, rate: SparsityRate) -> None:
        self.rate = float(rate)

    # -- the producer protocol

    def key(self) -> dict[str, Any]:
        return {"sparsity": {"name": self.name, **self.params()}}

    def params(self) -> dict[str, Any]:
        return {"rate": self.rate}

    def columns(self) -> dict[str, Any]:
        return {"sparsity": self.name, "sparsity_rate": self.rate}

    def uses_forget_set(self, role: str) -> bool:
        return role != "original"

    def check(self, env: TrainEnv) -> None:
        """Data-dependent checks (none by default)."""

    def produce(self, role: str, env: TrainEnv, lookup: Lookup) -> tuple[Tensors, dict[str, Any]]:
        if role == "original":
            model, masks, seconds = self.sparse_original(env, lookup)
        else:  # the same mask as the original, trained from the initialisation on D_r
            masks = lookup.sibling("original").artifacts["masks"]
            model = _init(env)
            seconds = _train(model, env, masks, role_indices(role, env), f"sparse {role}")
        tensors = {**model.state_dict(), **{MASK_PREFIX + k: v for k, v in masks.items()}}
        return tensors, {"train_seconds": seconds, "density": density(masks)}

    def load(self, role: str, tensors: Tensors, meta: dict[str, Any], env: TrainEnv,
             lookup: Lookup) -> tuple[nn.Module, dict[str, Any]]:
        state = {k: v for k, v in tensors.items() if not k.startswith(MASK_PREFIX)}
        masks = {k[len(MASK_PREFIX):]: v.bool() for k, v in tensors.items()
                 if k.startswith(MASK_PREFIX)}
        if role != "original":
            own = lookup.sibling("original").artifacts["masks"]
            if any(not torch.equal(masks[k], own[k]) for k in masks):
                raise RuntimeError("the sparse retrain's cached mask differs from the original's")
        return load_state(env, state), {"masks": masks}

    def sparse_original(self, env: TrainEnv, lookup: Lookup
                        ) -> tuple[nn.Module, Masks, float]:
        raise NotImplementedError


def _init(env: TrainEnv) -> nn.Module:
    torch.manual_seed(env.seed)  # the same initialisation as the dense models
    return env.build_model()


def _train(model: nn.Module, env: TrainEnv, masks: Masks, indices: torch.Tensor | None,
           desc: str) -> float:
    apply_masks(model, masks)
    return fit(model, env.data.train_x, env.data.train_y, env.recipe, seed=env.seed,
               indices=indices, options=FitOptions(observers=[MaskKeeper(masks)], desc=desc,
                                                   progress=env.progress))


class IMP(Pruned):
    """Iterative magnitude pruning with rewinding: ``rounds`` times prune the same share of the
    remaining weights of the trained model, rewind to epoch ``rewind_epoch`` of the dense run,
    retrain on D."""

    name = "imp"

    def __init__(self, *, rate: SparsityRate, rounds: PositiveInt = 5,
                 rewind_epoch: NonNegativeInt = 1) -> None:
        super().__init__(rate=rate)
        self.rounds, self.rewind_epoch = rounds, rewind_epoch

    def params(self) -> dict[str, Any]:
        return {"rate": self.rate, "rounds": self.rounds, "rewind_epoch": self.rewind_epoch}

    def check(self, env: TrainEnv) -> None:
        if self.rewind_epoch > env.recipe.epochs:
            raise ConfigError("sparsity.rewind_epoch", self.rewind_epoch,
                              f"an integer in [0, {env.recipe.epochs}] (the train recipe's "
                              "epochs)")

    def rewind_state(self, env: TrainEnv) -> dict[str, torch.Tensor]:
        """Weights after ``rewind_epoch`` epochs of the dense original's training on D
        (the same seed and recipe, so the same trajectory); epoch 0 = the initialisation."""
        model = _init(env)
        if self.rewind_epoch == 0:
            return copy.deepcopy(model.state_dict())
        steps = self.rewind_epoch * math.ceil(len(env.data.train_x) / env.recipe.batch_size)
        snap = _Snapshot(steps)
        try:
            fit(model, env.data.train_x, env.data.train_y, env.recipe, seed=env.seed,
                options=FitOptions(observers=[snap], desc="rewind", progress=env.progress))
        except _Stop:
            pass
        assert snap.state is not None
        return snap.state

    def sparse_original(self, env: TrainEnv, lookup: Lookup
                        ) -> tuple[nn.Module, Masks, float]:
        self.check(env)
        per_round = 1 - (1 - self.rate) ** (1 / self.rounds)
        trained = lookup.wrapped("original").model
        rewind = self.rewind_state(env)
        masks: Masks | None = None
        seconds = 0.0
        for r in range(self.rounds):
            masks = magnitude_masks(trained, per_round, masks)
            trained = _init(env)
            trained.load_state_dict(rewind)
            seconds = _train(trained, env, masks, None, f"{self.name} round {r + 1}/{self.rounds}")
        assert masks is not None
        return trained, masks, seconds


class OMP(IMP):
    """One-shot magnitude pruning: one round of IMP."""

    name = "omp"

    def __init__(self, *, rate: SparsityRate, rewind_epoch: NonNegativeInt = 1) -> None:
        super().__init__(rate=rate, rounds=1, rewind_epoch=rewind_epoch)

    def params(self) -> dict[str, Any]:
        return {"rate": self.rate, "rewind_epoch": self.rewind_epoch}


class SynFlow(Pruned):
    """SynFlow scores at initialisation (data-free), then training of the sparse model on D."""

    name = "synflow"

    def __init__(self, *, rate: SparsityRate, iterations: PositiveInt = 100) -> None:
        super().__init__(rate=rate)
        self.iterations = iterations

    def params(self) -> dict[str, Any]:
        return {"rate": self.rate, "iterations": self.iterations}

    def sparse_original(self, env: TrainEnv, lookup: Lookup
                        ) -> tuple[nn.Module, Masks, float]:
        model = _init(env)
        masks = synflow_masks(model, self.rate, env.data.input_shape, self.iterations)
        return model, masks, _train(model, env, masks, None, "synflow original")

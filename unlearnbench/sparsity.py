"""Prune first, then unlearn (Jia et al., NeurIPS 2023): sparse originals and retrains.

A sparsity config (``conf/sparsity/*.yaml``) turns the job's original and retrain into sparse
models sharing one mask; every unlearning method then runs with that mask held fixed.

Masks are ``{parameter name: bool tensor}`` (True = kept) over the *prunable* weights: the
weights of every Conv2d and Linear layer except the classifier (the last Linear), as the
reference prunes every conv layer and leaves the fully connected head dense.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import ConfigError
from .training import FitOptions, fit

if TYPE_CHECKING:  # the runner imports this module; avoid the cycle at runtime
    from .runner import Job

Masks = dict[str, torch.Tensor]
SPARSITY = ("none", "omp", "synflow", "imp")
MASK_PREFIX = "mask::"  # mask tensors sit next to the weights in one safetensors entry


def validate_sparsity(cfg: Any, epochs: int) -> None:
    """Data-free checks of the ``sparsity`` group; raises ConfigError."""
    if cfg is None:
        return
    name = str(cfg.name)
    if name not in SPARSITY:
        raise ConfigError("sparsity", name, ", ".join(SPARSITY))
    rate = cfg.get("rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        raise ConfigError("sparsity.rate", rate, "a number with 0 <= rate < 1 (e.g. 0.95)")
    if name == "none" and rate != 0:
        raise ConfigError("sparsity.rate", rate,
                          "0 with sparsity=none (choose sparsity=omp, synflow or imp to prune)")
    if name in ("omp", "imp"):
        rewind = cfg.get("rewind_epoch", 0)
        if not isinstance(rewind, int) or not 0 <= rewind <= epochs:
            raise ConfigError("sparsity.rewind_epoch", rewind,
                              f"an integer in [0, {epochs}] (the train recipe's epochs)")
    if name == "imp" and (not isinstance(cfg.get("rounds"), int) or cfg.rounds < 1):
        raise ConfigError("sparsity.rounds", cfg.get("rounds"), "an integer >= 1")
    if name == "synflow" and (not isinstance(cfg.get("iterations"), int)
                              or cfg.iterations < 1):
        raise ConfigError("sparsity.iterations", cfg.get("iterations"), "an integer >= 1")


# ---------------------------------------------------------------- masks


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """Conv2d and Linear weights, the classifier (last Linear) excepted."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    if layers and isinstance(layers[-1][1], nn.Linear):
        layers = layers[:-1]
    return {f"{n}.weight" if n else "weight": m.weight for n, m in layers}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks | None) -> nn.Module:
    """Zero the pruned weights in place."""
    if masks:
        params = dict(model.named_parameters())
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].device, params[name].dtype))
    return model


class MaskKeeper:
    """StepObserver: re-zero the pruned weights after every optimiser step, so momentum and
    weight decay never revive them and the shared `fit` loop trains only the kept weights."""

    def __init__(self, masks: Masks) -> None:
        self.masks = masks

    def before_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        pass

    def after_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        apply_masks(model, self.masks)


def density(masks: Masks) -> float:
    """Share of prunable weights kept."""
    total = sum(m.numel() for m in masks.values())
    return sum(int(m.sum()) for m in masks.values()) / max(total, 1)


def _keep_top(scores: dict[str, torch.Tensor], keep: int) -> Masks:
    """Global mask keeping the ``keep`` highest scores (ties broken by position)."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    chosen = torch.zeros(len(flat), dtype=torch.bool, device=flat.device)
    chosen[torch.topk(flat, keep, sorted=False).indices] = True
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = chosen[start : start + s.numel()].view_as(s).cpu()
        start += s.numel()
    return masks


def magnitude_masks(model: nn.Module, rate: float, masks: Masks | None = None) -> Masks:
    """Global magnitude pruning of ``rate`` of the still-kept prunable weights (IMP semantics:
    each round removes a share of what is left)."""
    weights = {n: p.detach() for n, p in prunable(model).items()}
    kept = {n: (masks[n].to(w.device) if masks else torch.ones_like(w, dtype=torch.bool))
            for n, w in weights.items()}
    alive = sum(int(k.sum()) for k in kept.values())
    scores = {n: torch.where(kept[n], w.abs(), torch.full_like(w, -1.0))
              for n, w in weights.items()}
    return _keep_top(scores, alive - round(rate * alive))


def synflow_masks(model: nn.Module, rate: float, input_shape: tuple[int, ...],
                  iterations: int) -> Masks:
    """SynFlow (Tanaka et al., 2020): data-free, iterative, on the given (initial) weights.

    Score = |θ ⊙ ∂R/∂θ| with R = 1ᵀ(∏|W|)1, the sum of the outputs of the network with
    absolute weights on an all-ones input; pruning follows the exponential schedule
    density_k = (1 − rate)^(k/iterations), k = 1..iterations, globally.
    """
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    original = {n: p.detach().clone() for n, p in prunable(net).items()}
    masks = {n: torch.ones_like(w, dtype=torch.bool) for n, w in original.items()}
    total = sum(w.numel() for w in original.values())
    x = torch.ones(1, *input_shape, dtype=torch.float64, device=next(net.parameters()).device)
    for k in range(1, iterations + 1):
        params = prunable(net)
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(original[n] * masks[n])
        net.zero_grad(set_to_none=True)
        net(x).sum().backward()
        scores = {n: torch.where(masks[n], (p.grad * p).abs(), torch.full_like(p, -1.0))
                  for n, p in params.items()}
        masks = {n: m.to(original[n].device) for n, m in
                 _keep_top(scores, round(total * (1 - rate) ** (k / iterations))).items()}
    return {n: m.cpu() for n, m in masks.items()}


# ---------------------------------------------------------------- sparse references


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


class Pruning:
    """The sparse variant of a job's original and retrain, cached under their own keys."""

    def __init__(self, job: Job, cfg: Any) -> None:
        self.job, self.cfg = job, cfg
        self.name, self.rate = str(cfg.name), float(cfg.rate)
        self.masks: Masks | None = None

    # -- training pieces

    def _init(self) -> nn.Module:
        torch.manual_seed(self.job.seed)  # the same initialisation as the dense models
        return self.job.build_model()

    def _train(self, model: nn.Module, masks: Masks, indices: torch.Tensor | None,
               desc: str) -> float:
        apply_masks(model, masks)
        job = self.job
        return fit(model, job.data.train_x, job.data.train_y, job.recipe, seed=job.seed,
                   indices=indices, options=FitOptions(observers=[MaskKeeper(masks)], desc=desc,
                                                       progress=bool(job.cfg.progress)))

    def _rewind_state(self) -> dict[str, torch.Tensor]:
        """Weights after ``rewind_epoch`` epochs of the dense original's training on D
        (the same seed and recipe, so the same trajectory); epoch 0 = the initialisation."""
        model = self._init()
        epochs = int(self.cfg.rewind_epoch)
        if epochs == 0:
            return copy.deepcopy(model.state_dict())
        job = self.job
        steps = epochs * math.ceil(len(job.data.train_x) / job.recipe.batch_size)
        snap = _Snapshot(steps)
        try:
            fit(model, job.data.train_x, job.data.train_y, job.recipe, seed=job.seed,
                options=FitOptions(observers=[snap], desc="rewind",
                                   progress=bool(job.cfg.progress)))
        except _Stop:
            pass
        assert snap.state is not None
        return snap.state

    def _sparse_original(self) -> tuple[nn.Module, Masks, float]:
        """The sparse model trained on D, its mask, and the seconds of its sparse training."""
        if self.name == "synflow":
            model = self._init()
            masks = synflow_masks(model, self.rate, self.job.data.input_shape,
                                  int(self.cfg.iterations))
            return model, masks, self._train(model, masks, None, "synflow original")
        # omp = one round of imp: prune the trained dense model, rewind, retrain sparse
        rounds = 1 if self.name == "omp" else int(self.cfg.rounds)
        per_round = 1 - (1 - self.rate) ** (1 / rounds)
        trained, _ = self.job.dense_reference("original")
        rewind = self._rewind_state()
        masks: Masks | None = None
        seconds = 0.0
        for r in range(rounds):
            masks = magnitude_masks(trained, per_round, masks)
            trained = self._init()
            trained.load_state_dict(rewind)
            seconds = self._train(trained, masks, None, f"{self.name} round {r + 1}/{rounds}")
        assert masks is not None
        return trained, masks, seconds

    # -- the runner's hook

    def key_material(self, role: str) -> dict[str, Any]:
        from omegaconf import OmegaConf

        return {**self.job.key_material(role),
                "sparsity": OmegaConf.to_container(self.cfg, resolve=True)}

    def reference(self, role: str) -> tuple[nn.Module, float]:
        """The sparse original (on D) or sparse retrain (same mask, from init on D_r)."""
        train: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]]
        if role == "original":
            def train() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
                model, masks, seconds = self._sparse_original()
                return self._pack(model, masks), {"train_seconds": seconds,
                                                  "density": density(masks)}
        else:
            if self.masks is None:
                self.reference("original")
            masks = self.masks
            assert masks is not None

            def train() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
                model = self._init()
                seconds = self._train(model, masks, self.job.split.retain, f"sparse {role}")
                return self._pack(model, masks), {"train_seconds": seconds,
                                                  "density": density(masks)}

        entry, seconds = self.job.cached(role, self.key_material(role), train)
        state = {k: v for k, v in entry.tensors.items() if not k.startswith(MASK_PREFIX)}
        masks = {k[len(MASK_PREFIX):]: v.bool() for k, v in entry.tensors.items()
                 if k.startswith(MASK_PREFIX)}
        if role == "original":
            self.masks = masks
        elif any(not torch.equal(masks[k], self.masks[k]) for k in masks):
            raise RuntimeError("the sparse retrain's cached mask differs from the original's")
        return self.job.load(state), seconds

    @staticmethod
    def _pack(model: nn.Module, masks: Masks) -> dict[str, torch.Tensor]:
        return {**model.state_dict(), **{MASK_PREFIX + k: v for k, v in masks.items()}}


def make_pruning(job: Job, cfg: Any) -> Pruning | None:
    """The job's pruning hook, or None for dense models (whose cache keys stay unchanged)."""
    validate_sparsity(cfg, job.recipe.epochs)
    return None if cfg is None or cfg.name == "none" else Pruning(job, cfg)


def sparsity_columns(cfg: Any) -> dict[str, Any]:
    """The `sparsity` and `sparsity_rate` columns of a job's rows."""
    if cfg is None:
        return {"sparsity": "none", "sparsity_rate": 0.0}
    return {"sparsity": str(cfg.name), "sparsity_rate": float(cfg.rate)}

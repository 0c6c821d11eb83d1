"""Amnesiac's recording run (Graves et al., AAAI 2021): the original, trained exactly as the
dense producer trains it, while the parameter updates of every batch that holds a forget
sample are summed.

The paper logs every batch's update because future requests are unknown. The benchmark knows
D_f when the original trains, so the producer keeps only what unlearning needs: the running sum
of the affected batches' updates (one float64 copy of the parameters). The recording run draws
exactly the same random numbers as the plain original (same init, same data order): its weights
equal the plain original's (bitwise on CPU), which the tests check.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..context import TrainEnv
from ..training import FitOptions, fit
from .base import Lookup, Tensors, load_state

FORMAT = 1  # of the cached artifacts (part of the cache key)


class UpdateRecorder:
    """StepObserver summing the parameter updates of the batches that hold a forget sample."""

    def __init__(self, model: nn.Module, forget_mask: torch.Tensor) -> None:
        self.params = dict(model.named_parameters())
        self.mask = forget_mask
        self.total = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in self.params.items()}
        self.steps = self.affected = 0
        self._before: dict[str, torch.Tensor] | None = None

    def before_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        self.steps += 1
        hit = bool(self.mask[batch_indices].any())  # copies only for affected batches
        self._before = ({n: p.detach().clone() for n, p in self.params.items()} if hit
                        else None)

    def after_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None:
        if self._before is None:
            return
        self.affected += 1
        for n, p in self.params.items():
            self.total[n] += (p.detach() - self._before[n]).double()
        self._before = None


class RecordedOriginal:
    """The producer of the role ``variant:amnesiac``."""

    name = "amnesiac"

    def key(self) -> dict[str, Any]:
        return {"variant": {}, "format": FORMAT}

    def uses_forget_set(self, role: str) -> bool:
        return True  # which batches get recorded depends on D_f

    def produce(self, role: str, env: TrainEnv, lookup: Lookup) -> tuple[Tensors, dict[str, Any]]:
        torch.manual_seed(env.seed)  # the same init as the plain original
        model = env.build_model()
        mask = torch.zeros(len(env.data.train_y), dtype=torch.bool, device=env.device)
        mask[env.split.forget.to(env.device)] = True
        recorder = UpdateRecorder(model, mask)
        seconds = fit(model, env.data.train_x, env.data.train_y, env.recipe, seed=env.seed,
                      options=FitOptions(desc="original (amnesiac record)",
                                         progress=env.progress, observers=[recorder]))
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update({f"delta.{k}": v for k, v in recorder.total.items()})
        params = sum(p.numel() for p in recorder.params.values())
        meta = {"train_seconds": seconds, "steps": recorder.steps,
                "steps_affected": recorder.affected, "param_count": params}
        return tensors, meta

    def load(self, role: str, tensors: Tensors, meta: dict[str, Any], env: TrainEnv,
             lookup: Lookup) -> tuple[nn.Module, dict[str, Any]]:
        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v.to(env.device) for k, v in tensors.items()
                    if k.startswith(prefix)}

        return load_state(env, part("model.")), {"delta": part("delta."), "meta": meta}

"""SISA's training (Bourtoule et al., IEEE S&P 2021): Sharded, Isolated, Sliced, Aggregated.

The training set is cut into ``shards`` disjoint random shards (``scenarios.shard_partition``),
each shard into ``slices``. Constituent s trains incrementally: at slice r on the union of
slices 0..r, for the paper's number of epochs per slice (the total cost equals
``train.epochs`` epochs on the whole shard), and its weights are checkpointed after every
slice. Prediction aggregates the constituents (:class:`Ensemble`). The method
(``methods/sisa.py``) retrains the touched shards from these checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..context import TrainEnv
from ..errors import ConfigError
from ..params import PositiveInt
from ..scenarios import shard_partition
from ..training import FitOptions, Recipe, fit
from .base import Lookup, Tensors

FORMAT = 1  # of the cached artifacts (part of the cache key)
Aggregation = Literal["mean_softmax", "majority"]


class Trainable(Protocol):
    """What SISA's training needs: a TrainEnv, or a method's full-access context."""

    @property
    def data(self) -> Any: ...
    recipe: Recipe
    seed: int
    device: torch.device
    progress: bool

    def build_model(self) -> nn.Module: ...


def slice_epochs(epochs: int, slices: int) -> list[int]:
    """The paper's schedule: slice r gets int((r+1)a) - int(ra) epochs with
    a = 2·epochs/(slices+1), so the cumulative slices cost as much as ``epochs`` epochs on the
    shard; the last slice gets at least one epoch so every sample is trained on."""
    a = 2 * epochs / (slices + 1)
    out = [int((r + 1) * a) - int(r * a) for r in range(slices)]
    out[-1] = max(out[-1], 1)
    return out


def layout(n: int, shards: int, slices: int, seed: int) -> list[list[torch.Tensor]]:
    """Slices (sorted index tensors) of every shard."""
    if shards * slices > n:
        raise ConfigError("method.runner.training.shards", shards,
                          f"shards * slices <= n_train={n} (slices={slices})")
    return [[part.sort().values for part in shard.tensor_split(slices)]
            for shard in shard_partition(n, shards, seed)]


class Ensemble(nn.Module):
    """The aggregate as one model: forward returns log-probabilities of the aggregate, so every
    metric (accuracies on the argmax, MIA on the softmax) applies unchanged.

    ``mean_softmax``: log of the mean of the constituents' softmax. ``majority``: log of each
    class's vote share (ties go to the lowest class index, as an argmax over the votes does).
    """

    def __init__(self, members: list[nn.Module], aggregation: Aggregation = "mean_softmax"
                 ) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.aggregation = aggregation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([m(x).float() for m in self.members])
        if self.aggregation == "mean_softmax":
            return torch.logsumexp(F.log_softmax(logits, -1), 0) - math.log(len(self.members))
        votes = F.one_hot(logits.argmax(-1), logits.shape[-1]).float().mean(0)
        return torch.log(votes.clamp_min(1e-6))


def fresh_member(env: Trainable, shard: int) -> nn.Module:
    torch.manual_seed(env.seed + shard)  # constituent 0 starts where the plain original does
    return env.build_model()


def train_slices(model: nn.Module, env: Trainable, slices: list[torch.Tensor], shard: int,
                 first: int, drop: torch.Tensor | None = None
                 ) -> tuple[list[dict], float, int]:
    """Train slices ``first``.. of one shard (each on the union of slices 0..r, minus ``drop``);
    the state after each slice, the seconds spent in training and the work done in sample
    passes (epochs x samples: a measure of cost that no other load on the machine disturbs)."""
    epochs = slice_epochs(env.recipe.epochs, len(slices))
    states, seconds, work = [], 0.0, 0
    for r in range(first, len(slices)):
        idx = torch.cat(slices[: r + 1]).sort().values.to(env.device)
        if drop is not None:
            idx = idx[~drop[idx]]
        if epochs[r] > 0:
            seconds += fit(model, env.data.train_x, env.data.train_y,
                           replace(env.recipe, epochs=epochs[r]),
                           seed=env.seed + shard * len(slices) + r, indices=idx,
                           options=FitOptions(desc=f"sisa shard {shard} slice {r}",
                                              progress=env.progress))
            work += epochs[r] * len(idx)
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return states, seconds, work


class Shards:
    """The producer of the role ``variant:sisa``: every constituent's checkpoints."""

    name = "sisa"

    def __init__(self, *, shards: PositiveInt = 5, slices: PositiveInt = 5) -> None:
        self.shards, self.slices = shards, slices

    def key(self) -> dict[str, Any]:
        return {"variant": {"shards": self.shards, "slices": self.slices}, "format": FORMAT}

    def uses_forget_set(self, role: str) -> bool:
        return False  # trained on all of D; deletion happens at unlearning

    def check(self, env: TrainEnv) -> None:
        layout(len(env.data.train_y), self.shards, self.slices, env.seed)

    def produce(self, role: str, env: TrainEnv, lookup: Lookup) -> tuple[Tensors, dict[str, Any]]:
        tensors, seconds, work = {}, [], 0
        for s, parts in enumerate(layout(len(env.data.train_y), self.shards, self.slices,
                                         env.seed)):
            states, spent, done = train_slices(fresh_member(env, s), env, parts, s, first=0)
            seconds.append(spent)
            work += done
            for r, state in enumerate(states):
                tensors.update({f"shard{s}.slice{r}.{k}": v for k, v in state.items()})
        meta = {"train_seconds": sum(seconds), "shard_seconds": seconds, "work": work,
                "slice_epochs": slice_epochs(env.recipe.epochs, self.slices)}
        return tensors, meta

    def load(self, role: str, tensors: Tensors, meta: dict[str, Any], env: TrainEnv,
             lookup: Lookup) -> tuple[nn.Module, dict[str, Any]]:
        def state(s: int, r: int) -> dict[str, torch.Tensor]:
            prefix = f"shard{s}.slice{r}."
            return {k[len(prefix):]: v.to(env.device) for k, v in tensors.items()
                    if k.startswith(prefix)}

        checkpoints = {(s, r): state(s, r) for s in range(self.shards)
                       for r in range(self.slices)}
        members = []
        for s in range(self.shards):
            member = env.build_model()
            member.load_state_dict(checkpoints[(s, self.slices - 1)])
            members.append(member.eval())
        return Ensemble(members).eval(), {"checkpoints": checkpoints, "meta": meta,
                                          "shards": self.shards, "slices": self.slices}

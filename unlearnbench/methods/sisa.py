"""SISA: Sharded, Isolated, Sliced, Aggregated training (Bourtoule et al., IEEE S&P 2021).

Training (the variant, cached by the runner): the training set is cut into ``shards`` disjoint
random shards (``scenarios.shard_partition``), each shard into ``slices``. Constituent s
trains incrementally: at slice r on the union of slices 0..r, for the paper's number of epochs
per slice (the total cost equals ``train.epochs`` epochs on the whole shard), and its weights
are checkpointed after every slice. Prediction aggregates the constituents.

Unlearning: each shard holding a forget sample resumes from its checkpoint before the first
affected slice (its fresh initialisation when that is slice 0) and retrains the remaining
slices without the forgotten samples; untouched constituents are reused as they are. The
result is exactly the ensemble SISA would have trained on D_r with the same layout and seeds
(bitwise on CPU). RTE counts only that retraining.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..metrics.accuracy import test_mask
from ..scenarios import shard_partition
from ..training import FitOptions, accuracy, fit
from .base import MethodOutput, UnlearnContext

USES_FORGET_SET = False  # the ensemble is trained on all of D; deletion happens at unlearning
FORMAT = 1  # of the cached artifacts (part of the cache key)
AGGREGATIONS = ("mean_softmax", "majority")
TRAINING_KEYS = ("variant", "shards", "slices")


def validate(method_cfg: Any) -> None:
    """Data-free checks of the SISA config (shards * slices <= n_train needs the data)."""
    training = method_cfg.training
    for key in training:
        if key not in TRAINING_KEYS:
            raise ConfigError(f"method.training.{key}", training[key],
                              f"the keys {', '.join(TRAINING_KEYS)}")
    for key in ("shards", "slices"):
        value = training.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"method.training.{key}", value, "an integer >= 1")
    if method_cfg.get("aggregation") not in AGGREGATIONS:
        raise ConfigError("method.aggregation", method_cfg.get("aggregation"),
                          ", ".join(AGGREGATIONS))


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
        raise ConfigError("method.training.shards", shards,
                          f"shards * slices <= n_train={n} (slices={slices})")
    return [[part.sort().values for part in shard.tensor_split(slices)]
            for shard in shard_partition(n, shards, seed)]


class Ensemble(nn.Module):
    """The aggregate as one model: forward returns log-probabilities of the aggregate, so every
    metric (accuracies on the argmax, MIA on the softmax) applies unchanged.

    ``mean_softmax``: log of the mean of the constituents' softmax. ``majority``: log of each
    class's vote share (ties go to the lowest class index, as an argmax over the votes does).
    """

    def __init__(self, members: list[nn.Module], aggregation: str = "mean_softmax") -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ConfigError("method.aggregation", aggregation, ", ".join(AGGREGATIONS))
        self.members = nn.ModuleList(members)
        self.aggregation = aggregation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([m(x).float() for m in self.members])
        if self.aggregation == "mean_softmax":
            return torch.logsumexp(F.log_softmax(logits, -1), 0) - math.log(len(self.members))
        votes = F.one_hot(logits.argmax(-1), logits.shape[-1]).float().mean(0)
        return torch.log(votes.clamp_min(1e-6))


def _fresh(ctx: UnlearnContext, shard: int) -> nn.Module:
    torch.manual_seed(ctx.seed + shard)  # constituent 0 starts where the plain original does
    return ctx.build_model()


def _train_slices(model: nn.Module, ctx: UnlearnContext, slices: list[torch.Tensor], shard: int,
                  first: int, drop: torch.Tensor | None = None
                  ) -> tuple[list[dict], float, int]:
    """Train slices ``first``.. of one shard (each on the union of slices 0..r, minus ``drop``);
    the state after each slice, the seconds spent in training and the work done in sample
    passes (epochs x samples: a measure of cost that no other load on the machine disturbs)."""
    epochs = slice_epochs(ctx.recipe.epochs, len(slices))
    states, seconds, work = [], 0.0, 0
    for r in range(first, len(slices)):
        idx = torch.cat(slices[: r + 1]).sort().values.to(ctx.device)
        if drop is not None:
            idx = idx[~drop[idx]]
        if epochs[r] > 0:
            seconds += fit(model, ctx.data.train_x, ctx.data.train_y,
                           replace(ctx.recipe, epochs=epochs[r]),
                           seed=ctx.seed + shard * len(slices) + r, indices=idx,
                           options=FitOptions(desc=f"sisa shard {shard} slice {r}",
                                              progress=ctx.progress))
            work += epochs[r] * len(idx)
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return states, seconds, work


def train_variant(ctx: UnlearnContext, *, shards: int,
                  slices: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, seconds, work = {}, [], 0
    for s, shard_slices in enumerate(layout(len(ctx.data.train_y), shards, slices, ctx.seed)):
        states, spent, done = _train_slices(_fresh(ctx, s), ctx, shard_slices, s, first=0)
        seconds.append(spent)
        work += done
        for r, state in enumerate(states):
            tensors.update({f"shard{s}.slice{r}.{k}": v for k, v in state.items()})
    meta = {"train_seconds": sum(seconds), "shard_seconds": seconds, "work": work,
            "slice_epochs": slice_epochs(ctx.recipe.epochs, slices)}
    return tensors, meta


def load_variant(ctx: UnlearnContext, tensors: dict[str, torch.Tensor], meta: dict[str, Any], *,
                 shards: int, slices: int) -> dict[str, Any]:
    def state(s: int, r: int) -> dict[str, torch.Tensor]:
        prefix = f"shard{s}.slice{r}."
        return {k[len(prefix):]: v.to(ctx.device) for k, v in tensors.items()
                if k.startswith(prefix)}

    checkpoints = {(s, r): state(s, r) for s in range(shards) for r in range(slices)}
    members = []
    for s in range(shards):
        member = ctx.build_model()
        member.load_state_dict(checkpoints[(s, slices - 1)])
        members.append(member.eval())
    return {"original": Ensemble(members).eval(), "checkpoints": checkpoints, "meta": meta}


def _test_accuracy(model: nn.Module, ctx: UnlearnContext) -> float:
    keep = test_mask(ctx.data, ctx.split)
    return accuracy(model, ctx.data.test_x[keep], ctx.data.test_y[keep])


def unlearn(model: nn.Module, ctx: UnlearnContext, *,
            aggregation: str = "mean_softmax") -> MethodOutput:
    if "checkpoints" not in ctx.variant:
        raise RuntimeError("sisa needs `training: {variant: sisa, ...}` in its config")
    shards, slices = ctx.variant["params"]["shards"], ctx.variant["params"]["slices"]
    checkpoints = ctx.variant["checkpoints"]
    drop = torch.zeros(len(ctx.data.train_y), dtype=torch.bool, device=ctx.device)
    drop[ctx.split.forget.to(ctx.device)] = True
    members, rte, work, touched, rerun = [], 0.0, 0, 0, 0
    for s, shard_slices in enumerate(layout(len(drop), shards, slices, ctx.seed)):
        hit = [bool(drop[part.to(ctx.device)].any()) for part in shard_slices]
        if not any(hit):  # untouched: the constituent as trained
            member = ctx.build_model()
            member.load_state_dict(checkpoints[(s, slices - 1)])
        else:
            first = hit.index(True)
            if first == 0:
                member = _fresh(ctx, s)
            else:
                member = ctx.build_model()
                member.load_state_dict(checkpoints[(s, first - 1)])
            _, spent, done = _train_slices(member, ctx, shard_slices, s, first, drop)
            rte, work = rte + spent, work + done
            touched, rerun = touched + 1, rerun + slices - first
        members.append(member.eval())
    unlearned = Ensemble(members, aggregation).eval()
    original = Ensemble(list(ctx.variant["original"].members), aggregation).eval()
    ensemble_s = float(ctx.variant["train_seconds"])
    retrain_work = ctx.recipe.epochs * len(ctx.split.retain)  # the plain retrain's sample passes
    extras = {
        "shards_retrained": float(touched),
        "slices_retrained": float(rerun),
        "ensemble_train_s": ensemble_s,
        "speedup_vs_ensemble": ensemble_s / rte if rte > 0 else math.inf,
        "work_speedup": retrain_work / work if work else math.inf,
        "work_speedup_vs_ensemble": ctx.variant["meta"]["work"] / work if work else math.inf,
        "ensemble_original_TA": _test_accuracy(original, ctx),
        "constituent_mean_TA": sum(_test_accuracy(m, ctx) for m in original.members) / shards,
    }
    return MethodOutput(unlearned, rte_s=rte, extras=extras)

"""SISA unlearning (Bourtoule et al., IEEE S&P 2021), on the sharded, sliced ensemble that the
producer ``producers/sisa.py`` trains (declared under ``runner.training`` in the YAML).

Each shard holding a forget sample resumes from its checkpoint before the first affected slice
(its fresh initialisation when that is slice 0) and retrains the remaining slices without the
forgotten samples; untouched constituents are reused as they are. The result is exactly the
ensemble SISA would have trained on D_r with the same layout and seeds (bitwise on CPU). RTE
counts only that retraining.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..producers.sisa import Aggregation, Ensemble, fresh_member, layout, train_slices
from .base import MethodContext, MethodOutput


def unlearn(model: nn.Module, ctx: MethodContext, *,
            aggregation: Aggregation = "mean_softmax") -> MethodOutput:
    if "checkpoints" not in ctx.variant:
        raise RuntimeError("sisa needs `runner.training` = the sisa shards producer")
    shards, slices = ctx.variant["shards"], ctx.variant["slices"]
    checkpoints = ctx.variant["checkpoints"]
    drop = torch.zeros(len(ctx.data.train_y), dtype=torch.bool, device=ctx.device)
    drop[ctx.split.forget.to(ctx.device)] = True
    members, rte, work, touched, rerun = [], 0.0, 0, 0, 0
    for s, parts in enumerate(layout(len(drop), shards, slices, ctx.seed)):
        hit = [bool(drop[part.to(ctx.device)].any()) for part in parts]
        if not any(hit):  # untouched: the constituent as trained
            member = ctx.build_model()
            member.load_state_dict(checkpoints[(s, slices - 1)])
        else:
            first = hit.index(True)
            if first == 0:
                member = fresh_member(ctx, s)
            else:
                member = ctx.build_model()
                member.load_state_dict(checkpoints[(s, first - 1)])
            _, spent, done = train_slices(member, ctx, parts, s, first, drop)
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
    }
    # The accuracy cost of sharding: the task reports their test accuracy (the method may not
    # see the test set).
    extra_models = {"ensemble_original": original, "constituent_mean": list(original.members)}
    return MethodOutput(unlearned, rte_s=rte, extras=extras, extra_models=extra_models)

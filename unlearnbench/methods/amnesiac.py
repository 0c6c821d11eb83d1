"""Amnesiac unlearning (Graves et al., AAAI 2021, "Amnesiac Machine Learning").

While the original trains, the parameter update Δθ_b of every batch b is recorded (the producer
``producers/amnesiac.py``, declared under ``runner.training`` in the YAML); to forget D_f, the
updates of the batches that held a forget sample are subtracted, θ' = θ − Σ_{b ∋ D_f} Δθ_b,
optionally followed by a short repair fine-tune on D_r.

The memory the paper's full per-batch log would take is reported (`full_log_MB`, fp32 per
batch) next to what was kept (`stored_MB`). Only parameters are rewound; BatchNorm running
statistics stay as trained.
"""

from __future__ import annotations

import torch
from torch import nn

from ..params import LearningRate, NonNegativeInt
from .base import MethodContext, MethodOutput, finetune


def unlearn(model: nn.Module, ctx: MethodContext, *, repair_epochs: NonNegativeInt = 0,
            repair_lr: LearningRate = 0.01) -> MethodOutput:
    if "delta" not in ctx.variant:
        raise RuntimeError("amnesiac needs `runner.training` = the amnesiac recorder")
    recorded, delta, meta = ctx.variant["original"], ctx.variant["delta"], ctx.variant["meta"]
    # Rewind from the recorded run itself (on GPU it may differ from the plain original in the
    # last bits; on CPU they are equal).
    same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 recorded.state_dict().values(), strict=True))
    model.load_state_dict(recorded.state_dict())
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_((p.double() - delta[name]).to(p.dtype))
    if repair_epochs > 0:
        finetune(model, ctx, ctx.split.retain, epochs=repair_epochs, lr=repair_lr,
                 desc="amnesiac repair")
    mb = meta["param_count"] / 2**20
    extras = {
        "batches_removed": float(meta["steps_affected"]),
        "batches_removed_share": meta["steps_affected"] / max(meta["steps"], 1),
        "repair_epochs": float(repair_epochs),
        "full_log_MB": 4 * mb * meta["steps"],              # the paper's per-batch log, fp32
        "affected_log_MB": 4 * mb * meta["steps_affected"],  # only the batches with D_f
        "stored_MB": 8 * mb,                                # what is kept: one float64 sum
        "recorded_equals_original": float(same),
    }
    return MethodOutput(model, extras=extras)

"""Amnesiac unlearning (Graves et al., AAAI 2021, "Amnesiac Machine Learning").

While the original trains, the parameter update Δθ_b of every batch b is recorded; to forget
D_f, the updates of the batches that held a forget sample are subtracted,
θ' = θ − Σ_{b ∋ D_f} Δθ_b, optionally followed by a short repair fine-tune on D_r.

The paper logs every batch's update because future requests are unknown. The benchmark knows
D_f when the original trains, so the variant keeps only what unlearning needs: the running sum
of the affected batches' updates (one float64 copy of the parameters). The memory the full log
would take is reported (`full_log_MB`, fp32 per batch) next to what was kept (`stored_MB`).
Only parameters are rewound; BatchNorm running statistics stay as trained.

The recording run draws exactly the same random numbers as the plain original (same init, same
data order): its weights equal the plain original's (bitwise on CPU), which the tests check.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..training import FitOptions, fit
from .base import MethodOutput, UnlearnContext, finetune

USES_FORGET_SET = True  # which batches get recorded depends on D_f
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


def train_variant(ctx: UnlearnContext) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the original exactly as the runner does, recording the affected batches."""
    torch.manual_seed(ctx.seed)  # the same init as the plain original
    model = ctx.build_model()
    mask = torch.zeros(len(ctx.data.train_y), dtype=torch.bool, device=ctx.device)
    mask[ctx.split.forget.to(ctx.device)] = True
    recorder = UpdateRecorder(model, mask)
    seconds = fit(model, ctx.data.train_x, ctx.data.train_y, ctx.recipe, seed=ctx.seed,
                  options=FitOptions(desc="original (amnesiac record)", progress=ctx.progress,
                                     observers=[recorder]))
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"delta.{k}": v for k, v in recorder.total.items()})
    params = sum(p.numel() for p in recorder.params.values())
    meta = {"train_seconds": seconds, "steps": recorder.steps, "steps_affected": recorder.affected,
            "param_count": params}
    return tensors, meta


def load_variant(ctx: UnlearnContext, tensors: dict[str, torch.Tensor],
                 meta: dict[str, Any]) -> dict[str, Any]:
    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v.to(ctx.device) for k, v in tensors.items()
                if k.startswith(prefix)}

    recorded = ctx.build_model()
    recorded.load_state_dict(part("model."))
    recorded.eval()
    return {"original": recorded, "delta": part("delta."), "meta": meta}


def unlearn(model: nn.Module, ctx: UnlearnContext, *, repair_epochs: int = 0,
            repair_lr: float = 0.01) -> MethodOutput:
    if "delta" not in ctx.variant:
        raise RuntimeError("amnesiac needs `training: {variant: amnesiac}` in its config")
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

"""Metric families; ``evaluate`` computes every per-model metric of DESIGN.md."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..data import Data
from ..scenarios import Split
from .accuracy import accuracy_metrics
from .gaps import gap_metrics
from .mia import mia_metrics

__all__ = ["evaluate", "gap_metrics"]


def evaluate(model: nn.Module, data: Data, split: Split, eval_cfg: Any) -> dict[str, float]:
    """UA, RA, TA, FTA and MIA-Efficacy (one column per configured feature)."""
    bs = int(eval_cfg.batch_size)
    out = accuracy_metrics(model, data, split, bs)
    out.update(mia_metrics(model, data, split, list(eval_cfg.mia_features),
                           int(eval_cfg.mia_max_shadow), bs))
    return out

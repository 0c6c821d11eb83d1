"""UA, RA, TA, FTA: accuracies on the forget, retain and test sets (percent)."""

from __future__ import annotations

import torch
from torch import nn

from ..context import TrainEnv
from ..data import Data
from ..scenarios import Split
from ..training import accuracy


def test_mask(data: Data, split: Split) -> torch.Tensor:
    """D_test': the test set without the forgotten classes (class-wise), else all of it."""
    if not split.forget_classes:
        return torch.ones(len(data.test_y), dtype=torch.bool, device=data.test_y.device)
    classes = torch.tensor(split.forget_classes, device=data.test_y.device)
    return ~torch.isin(data.test_y, classes)


def accuracy_metrics(model: nn.Module, env: TrainEnv, batch_size: int) -> dict[str, float]:
    """UA, RA, TA and (class-wise) FTA, in percent."""
    data, split = env.data, env.split
    keep = test_mask(data, split)
    forget, retain = split.forget.to(data.train_x.device), split.retain.to(data.train_x.device)
    out = {
        "UA": 100.0 - accuracy(model, data.train_x[forget], data.train_y[forget], batch_size),
        "RA": accuracy(model, data.train_x[retain], data.train_y[retain], batch_size),
        "TA": accuracy(model, data.test_x[keep], data.test_y[keep], batch_size),
        "FTA": float("nan"),
    }
    if split.forget_classes:
        out["FTA"] = accuracy(model, data.test_x[~keep], data.test_y[~keep], batch_size)
    return out

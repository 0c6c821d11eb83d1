"""Metrics on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unlearnbench.context import TrainEnv
from unlearnbench.data import Data
from unlearnbench.metrics.mia import svc_mia_efficacy
from unlearnbench.scenarios import Split
from unlearnbench.schema import gap_metrics
from unlearnbench.tasks.classification import Classification
from unlearnbench.training import Recipe

EVAL = {"batch_size": 64, "metrics": {
    "accuracy": {"_target_": "unlearnbench.metrics.accuracy.accuracy_metrics"},
    "mia": {"_target_": "unlearnbench.metrics.mia.mia_metrics",
            "features": ["confidence", "entropy"], "max_shadow": 500}}}


def evaluate(model: nn.Module, data: Data, split: Split) -> dict[str, float]:
    env = TrainEnv(data, split, Recipe(epochs=1, batch_size=8, lr=0.1), seed=0,
                   device=torch.device("cpu"), model_factory=lambda shape, k: nn.Identity())
    return Classification(EVAL).evaluate(model, env)


class Constant(nn.Module):
    """Predicts class ``k`` for every input."""

    def __init__(self, k: int, num_classes: int = 4) -> None:
        super().__init__()
        self.k, self.num_classes = k, num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), self.num_classes)
        logits[:, self.k] = 5.0
        return logits


def _data(n_per_class: int = 25) -> Data:
    y = torch.arange(4).repeat_interleave(n_per_class)
    x = torch.randn(len(y), 1, 2, 2)
    return Data("toy", x, y, x.clone(), y.clone(), 4)


def test_constant_model_has_known_accuracies() -> None:
    data = _data()
    forget = (data.train_y == 0).nonzero().squeeze(1)
    retain = (data.train_y != 0).nonzero().squeeze(1)
    split = Split(forget, retain, forget_classes=(0,))
    m = evaluate(Constant(1), data, split)
    assert m["UA"] == 100.0          # never predicts the forgotten class 0
    assert abs(m["RA"] - 100 / 3) < 1e-6   # right on class 1 only, a third of D_r
    assert abs(m["TA"] - 100 / 3) < 1e-6   # D_test' excludes class 0
    assert m["FTA"] == 0.0
    m0 = evaluate(Constant(0), data, split)
    assert m0["UA"] == 0.0 and m0["RA"] == 0.0 and m0["FTA"] == 100.0


def test_random_scenario_has_no_fta() -> None:
    data = _data()
    split = Split(torch.arange(0, 100, 10), torch.tensor([i for i in range(100) if i % 10]))
    assert np.isnan(evaluate(Constant(2), data, split)["FTA"])


def test_mia_efficacy_separates_memorised_from_unseen() -> None:
    g = np.random.default_rng(0)
    members = g.uniform(0.95, 1.0, size=(300, 1))       # confident on training data
    non_members = g.uniform(0.2, 0.7, size=(300, 1))    # unsure on unseen data
    memorised = g.uniform(0.95, 1.0, size=(100, 1))     # D_f still looks like training data
    unseen = g.uniform(0.2, 0.7, size=(100, 1))         # D_f looks like test data
    assert svc_mia_efficacy(members, non_members, memorised) < 10
    assert svc_mia_efficacy(members, non_members, unseen) > 90


def test_gaps_are_absolute_differences_and_their_mean() -> None:
    ref = {"UA": 100.0, "RA": 99.0, "TA": 95.0, "MIA": 100.0}
    row = {"UA": 90.0, "RA": 100.0, "TA": 91.0, "MIA": 80.0}
    g = gap_metrics(row, ref)
    assert g == {"gap_UA": 10.0, "gap_RA": 1.0, "gap_TA": 4.0, "gap_MIA": 20.0, "avg_gap": 8.75}
    assert gap_metrics(ref, ref)["avg_gap"] == 0.0

"""Metrics on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.svm import SVC
from torch import nn

from unlearnbench.context import TrainEnv
from unlearnbench.data import Data
from unlearnbench.metrics.mia import mia_metrics, svc_mia_efficacy
from unlearnbench.metrics.rbf_svc import rbf_svc_decision, taylor_features, taylor_rank
from unlearnbench.scenarios import Split
from unlearnbench.schema import gap_metrics
from unlearnbench.tasks.classification import Classification
from unlearnbench.training import Recipe

EVAL = {"batch_size": 64, "metrics": {
    "accuracy": {"_target_": "unlearnbench.metrics.accuracy.accuracy_metrics"},
    "mia": {"_target_": "unlearnbench.metrics.mia.mia_metrics",
            "features": ["confidence", "entropy"]}}}


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


class LogitTable(nn.Module):
    """Returns stored logits: each input image holds its row number in the table."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x.flatten(1)[:, 0].long()]


def reference_svc_mia(shadow_train: tuple, shadow_test: tuple, target_test: tuple) -> dict:
    """A direct transcription of Unlearn-Sparse evaluation/SVC_MIA.py (SVC_MIA with
    target_train=None, as main_forget.py calls it): (probabilities, labels) per set."""
    def entropy(p: torch.Tensor) -> torch.Tensor:
        return -torch.where(p > 0, p * p.log(), p.new([0.0])).sum(dim=-1)

    def fit_predict(s_train: torch.Tensor, s_test: torch.Tensor, t_test: torch.Tensor) -> float:
        x_shadow = torch.cat([s_train, s_test]).cpu().numpy().reshape(
            len(s_train) + len(s_test), -1)
        y_shadow = np.concatenate([np.ones(len(s_train)), np.zeros(len(s_test))])
        clf = SVC(C=3, gamma="auto", kernel="rbf")
        clf.fit(x_shadow, y_shadow)
        return float(1 - clf.predict(t_test.cpu().numpy().reshape(len(t_test), -1)).mean())

    conf = [torch.gather(p, 1, y[:, None]) for p, y in (shadow_train, shadow_test, target_test)]
    entr = [entropy(p) for p, _ in (shadow_train, shadow_test, target_test)]
    return {"confidence": fit_predict(*conf), "entropy": fit_predict(*entr)}


@pytest.mark.parametrize("solver", ["interior_point", "libsvm"])
def test_mia_equals_a_transcription_of_the_reference_svc_mia(solver: str) -> None:
    g = torch.Generator().manual_seed(0)
    n_train, n_test, k = 400, 150, 4
    labels = torch.randint(0, k, (n_train + n_test,), generator=g)
    # Members confident, non-members less so, D_f in between: overlapping features.
    sharp = torch.cat([torch.full((n_train,), 4.0), torch.full((n_test,), 1.5)])
    sharp[:60] = 2.5
    table = torch.randn(n_train + n_test, k, generator=g)
    table[torch.arange(len(labels)), labels] += sharp * torch.rand(len(labels), generator=g)
    x = torch.arange(n_train + n_test, dtype=torch.float32).view(-1, 1, 1, 1)
    data = Data("toy", x[:n_train], labels[:n_train], x[n_train:], labels[n_train:], k)
    split = Split(torch.arange(60), torch.arange(60, n_train))     # random forgetting
    env = TrainEnv(data, split, Recipe(epochs=1, batch_size=8, lr=0.1), seed=0,
                   device=torch.device("cpu"), model_factory=lambda shape, c: nn.Identity())
    ours = mia_metrics(LogitTable(table), env, 64, solver=solver)

    probs = F.softmax(table, dim=-1)
    members = split.retain[:n_test]       # Subset(retain_dataset, range(test_len))
    ref = reference_svc_mia((probs[members], labels[members]),
                            (probs[n_train:], labels[n_train:]),
                            (probs[split.forget], labels[split.forget]))
    assert ours["MIA_confidence"] == pytest.approx(100 * ref["confidence"], abs=1e-9)
    assert ours["MIA_entropy"] == pytest.approx(100 * ref["entropy"], abs=1e-9)
    assert 0 < ours["MIA_confidence"] < 100 and 0 < ours["MIA_entropy"] < 100


def test_interior_point_svc_has_libsvm_decision_values() -> None:
    g = np.random.default_rng(1)
    x = np.concatenate([g.beta(5, 1, 300), g.beta(3, 2, 300)])[:, None]
    y = np.concatenate([np.ones(300), -np.ones(300)])
    test = np.linspace(0, 1, 201)[:, None]
    ours = rbf_svc_decision(x, y, test, c=3.0, gamma=1.0, kernel_tol=1e-12, tol=1e-10)
    libsvm = SVC(C=3.0, kernel="rbf", gamma=1.0, tol=1e-6).fit(x, y).decision_function(test)
    assert np.abs(ours - libsvm).max() < 1e-3
    assert (np.sign(ours) == np.sign(libsvm)).all()


@pytest.mark.parametrize("radius", [0.5, 1.2, 2.3])
def test_taylor_features_reproduce_the_rbf_kernel(radius: float) -> None:
    u = np.linspace(-radius, radius, 101)
    rank = taylor_rank(radius, 1.0, 1e-12)
    phi = taylor_features(u, 0.0, 1.0, rank)
    kernel = np.exp(-((u[:, None] - u[None, :]) ** 2))
    assert np.abs(phi @ phi.T - kernel).max() <= 1e-12
    assert rank <= 45  # a small basis (the reason the solver is fast)


def test_gaps_are_absolute_differences_and_their_mean() -> None:
    ref = {"UA": 100.0, "RA": 99.0, "TA": 95.0, "MIA": 100.0}
    row = {"UA": 90.0, "RA": 100.0, "TA": 91.0, "MIA": 80.0}
    g = gap_metrics(row, ref)
    assert g == {"gap_UA": 10.0, "gap_RA": 1.0, "gap_TA": 4.0, "gap_MIA": 20.0, "avg_gap": 8.75}
    assert gap_metrics(ref, ref)["avg_gap"] == 0.0

"""Metrics of generated images in a judge classifier's space, on real digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from unlearnbench.generative.data import region_mask, to_square
from unlearnbench.generative.metrics import (
    cosine_pvalue,
    cosine_to_truth,
    frechet_distance,
    inception_score,
    inpainting_metrics,
    judge_outputs,
    kernel_inception_distance,
    recognised_share,
    train_judge,
)


@pytest.fixture(scope="module")
def digits():
    bunch = load_digits()
    x = to_square(torch.tensor(bunch.images / 16.0, dtype=torch.float32)[:, None])
    y = torch.tensor(bunch.target)
    tr_x, te_x, tr_y, te_y = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    judge = train_judge(tr_x, tr_y, seed=0, epochs=5, batch_size=32, channels=(8, 16, 32))
    return judge, tr_x, tr_y, te_x, te_y


@pytest.fixture(scope="module")
def feats(digits) -> tuple[np.ndarray, np.ndarray]:
    """Judge features of the training and the test images."""
    judge, tr_x, _, te_x, _ = digits
    return features(judge, tr_x), features(judge, te_x)


class JudgeFeatures(nn.Module):
    """The judge as torchmetrics' custom feature extractor."""

    def __init__(self, judge: nn.Module) -> None:
        super().__init__()
        self.judge = judge
        self.num_features = judge.head.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.judge.features(x).mean(dim=(2, 3))


def features(judge, images) -> np.ndarray:
    return judge_outputs(judge, images)[0]


def test_the_judge_is_a_real_classifier(digits) -> None:
    judge, _, _, te_x, te_y = digits
    _, probs = judge_outputs(judge, te_x)
    assert (probs.argmax(1) == te_y.numpy()).mean() > 0.85


def test_fd_matches_torchmetrics_fid_with_the_judge_as_feature_module(digits, feats) -> None:
    judge, tr_x, _, te_x, _ = digits
    fid = FrechetInceptionDistance(feature=JudgeFeatures(judge), normalize=True)
    fid.update(tr_x, real=True)
    fid.update(te_x, real=False)
    ours = frechet_distance(feats[1], feats[0])
    assert ours == pytest.approx(float(fid.compute()), rel=1e-3)


def test_fd_small_for_the_same_distribution_large_across_classes(digits, feats) -> None:
    _, _, tr_y, _, te_y = digits
    train, test = feats
    same = frechet_distance(train, test)
    across = frechet_distance(train[tr_y < 5], test[te_y >= 5])
    assert across > 10 * same
    assert frechet_distance(train, train) == pytest.approx(0.0, abs=1e-6)


def test_fd_grows_with_added_noise(digits, feats) -> None:
    judge, _, _, te_x, _ = digits
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(te_x.shape, generator=g)
    real = feats[0]
    values = [frechet_distance(real, features(judge, (te_x + s * noise).clamp(0, 1)))
              for s in (0.0, 0.1, 0.2, 0.4, 0.8)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), values


def test_kid_near_zero_for_the_same_distribution(digits, feats) -> None:
    _, _, tr_y, _, te_y = digits
    train, test = feats
    same, _ = kernel_inception_distance(train, test, subset_size=200, subsets=20)
    across, _ = kernel_inception_distance(train[tr_y < 5], test[te_y >= 5], subset_size=200,
                                          subsets=20)
    assert abs(same) < 0.05 * across


def test_kid_is_the_unbiased_mmd_of_a_cubic_kernel() -> None:
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0]])
    def k(a, b):  # (a.b / d + 1)^3 with d = 2
        return (a @ b / 2 + 1) ** 3
    expected = (2 * k(x[0], x[1]) + 2 * k(y[0], y[1])) / 2 \
        - 2 * np.mean([k(a, b) for a in x for b in y])
    value, std = kernel_inception_distance(x, y, subsets=3, subset_size=2)
    assert value == pytest.approx(expected) and std == pytest.approx(0.0)


def test_inception_score_bounds() -> None:
    confident = np.eye(4)[np.arange(40) % 4]
    assert inception_score(confident) == pytest.approx(4.0)
    assert inception_score(np.full((40, 4), 0.25)) == pytest.approx(1.0)


def test_cosine_recognition_and_t_test() -> None:
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert cosine_to_truth(a, np.array([[2.0, 0.0], [-1.0, -1.0]])).tolist() == \
        pytest.approx([1.0, -1.0])
    probs = np.eye(10)[[5, 7, 0, 1]]
    assert recognised_share(probs, [5, 7, 9]) == 0.5
    rng = np.random.default_rng(0)
    assert cosine_pvalue(rng.normal(0.5, 0.1, 200), rng.normal(0.9, 0.1, 200)) < 1e-6
    assert cosine_pvalue(rng.normal(0.9, 0.1, 200), rng.normal(0.9, 0.1, 200)) > 1e-3


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # identical cosines
def test_inpainting_row_of_a_perfect_and_a_blank_generator(digits) -> None:
    judge, _, _, te_x, te_y = digits
    forget = [0, 1]
    is_forget = torch.isin(te_y, torch.tensor(forget))
    retain, forget_x = te_x[~is_forget][:150], te_x[is_forget][:100]
    perfect = inpainting_metrics(judge, retain_generated=retain, retain_truth=retain,
                                 forget_generated=forget_x, forget_truth=forget_x,
                                 forget_classes=forget)
    assert perfect["retain_FD"] == pytest.approx(0, abs=1e-6)
    assert perfect["forget_cos"] == pytest.approx(1.0)
    assert perfect["forget_recognised"] > 0.8
    mask = region_mask(0.5, "inpaint")
    blank = inpainting_metrics(judge, retain_generated=retain * (1 - mask), retain_truth=retain,
                               forget_generated=forget_x * (1 - mask), forget_truth=forget_x,
                               forget_classes=forget)
    assert blank["forget_FD"] > perfect["forget_FD"] and blank["forget_cos"] < 1
    assert set(blank) == {f"{s}_{k}" for s in ("retain", "forget")
                          for k in ("FD", "KID", "IS", "cos")} | {"forget_recognised",
                                                                  "cos_pvalue"}

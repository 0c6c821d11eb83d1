"""Per-example privacy scores on hand-made [models, examples] arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unlearnbench.metrics.per_example import (
    DELTA,
    EPSILON_CAP,
    ceiling,
    epsilon_points,
    example_epsilon,
    final_score,
    forget_score_F,
    klom,
    logit_scaled_confidence,
    margins,
    ulira_accuracy,
)

RNG = np.random.default_rng(0)


def test_model_outputs_by_hand() -> None:
    logits = np.array([[[math.log(3.0), 0.0]]])                     # p(label 0) = 3/4
    assert logit_scaled_confidence(logits, np.array([0]))[0, 0] == pytest.approx(math.log(3))
    m = margins(np.array([[[2.0, 1.0, 0.0]]]), np.array([0]))
    assert m[0, 0] == pytest.approx(2 - math.log(math.e + 1))


def test_epsilon_of_a_hand_computed_example() -> None:
    """4 models a side; the best rule (threshold 0.5) errs once on each side: FPR = FNR = 1/4,
    so epsilon = log(1 - delta - 1/4) - log(1/4) = log(3 - 4 delta): 1/4 point (bucket
    [1, 1.5) of ceil(log 3) = 2)."""
    pos, neg = np.array([0.0, 10, 11, 12]), np.array([-12.0, -11, -10, 1])
    eps = example_epsilon(pos, neg)
    assert eps == pytest.approx(math.log(3 - 4 * DELTA), abs=1e-6)
    assert epsilon_points(np.array([eps]), 4).tolist() == [0.25]
    score = forget_score_F(np.stack([neg, neg]).T, np.stack([pos, pos]).T)
    assert score.value == 0.25 and score.per_example.shape == (2,)


def test_points_per_bucket() -> None:
    # N = 32: ceil(log 31) = 4, so 8 buckets of width 0.5 worth 1, 1/2, ..., 1/128
    eps = np.array([0.0, 0.49, 0.5, 1.2, 3.99, 4.0, EPSILON_CAP])
    assert epsilon_points(eps, 32).tolist() == [1, 1, 0.5, 0.25, 0.5**7, 0, 0]


def test_identical_outputs_score_every_point_separated_none() -> None:
    retrain = RNG.normal(1.0, 1.0, (32, 40))
    same = forget_score_F(retrain.copy(), retrain)
    assert same.value == 1.0 and (same.per_example == 0).all()   # FPR = TPR for every rule
    apart = forget_score_F(RNG.normal(-6, 1, (32, 40)), RNG.normal(6, 1, (32, 40)))
    assert apart.value == 0.0 and (apart.per_example == EPSILON_CAP).all()
    spike = forget_score_F(np.full((32, 3), 2.0) + RNG.normal(0, 1e-4, (32, 3)), retrain[:, :3])
    assert (spike.per_example == EPSILON_CAP).all()          # spread ratio below 1%: capped


def test_ceiling_of_a_hand_computed_example_identical_and_separated() -> None:
    """8 retrained models of one example, halves interleaved: [0, 1, 2, 3] and
    [0.5, 1.5, 2.5, 3.5]. The second half has the larger median (positive). Every rule
    telling them apart errs often: the best, e.g. "2.5 <= c" (TPR 1/2, FPR 1/4) or the
    interval [0, 1] (2 of the first half, 1 of the second), gives
    epsilon = log(1 - delta - 1/2) - log(1/4) = log(2 - 4 delta); with 4 models a side the
    buckets end at ceil(log 3) = 2, so it scores 1/2 point. An unlearned ensemble with the
    same outputs as the first half scores those points (the ceiling's), one with the second
    half's outputs (identical distributions) every point, a separated one none."""
    first, second = np.array([0.0, 1, 2, 3]), np.array([0.5, 1.5, 2.5, 3.5])
    retrain = np.concatenate([first, second])[:, None]
    top = ceiling(forget_score_F, retrain)
    assert top.per_example[0] == pytest.approx(math.log(2 - 4 * DELTA), abs=1e-5)
    assert top.value == 0.5
    like_first = forget_score_F(first[:, None].copy(), second[:, None])
    assert like_first.value == top.value
    assert forget_score_F(second[:, None].copy(), second[:, None]).value == 1.0
    separated = forget_score_F(first[:, None] - 20, second[:, None])
    assert separated.per_example[0] == EPSILON_CAP and separated.value == 0.0


def test_same_distribution_scores_the_ceiling() -> None:
    """Unlearned models distributed like retrained ones score what the retrain halves score;
    a shift of one standard deviation scores clearly less."""
    retrain = RNG.normal(0.0, 1.0, (32, 150))
    top = ceiling(forget_score_F, retrain)
    assert top.per_example.shape == (150,) and 0.05 < top.value < 0.5
    like_retrain = forget_score_F(RNG.normal(0.0, 1.0, (16, 150)), retrain[16:])
    assert like_retrain.value == pytest.approx(top.value, abs=0.04)
    shifted = forget_score_F(RNG.normal(1.0, 1.0, (16, 150)), retrain[16:])
    assert shifted.value < top.value - 0.05


def test_final_score_adjusts_for_utility() -> None:
    assert final_score(0.5, [90, 90], [100, 100], [80], [100]) == pytest.approx(0.36)


def test_ulira_hand_computed() -> None:
    """Shadows fit N(1, 1) (unlearned: 0, 2) and N(5, 1) (retrain: 4, 6); targets 1.5 and 0.5
    are called unlearned (right), 5 retrained (right), 2.9 unlearned (wrong): 3/4."""
    unlearned = np.array([[0.0], [2.0], [1.5], [0.5]])
    retrain = np.array([[4.0], [6.0], [2.9], [5.0]])
    assert ulira_accuracy(unlearned, retrain).value == 0.75


def test_ulira_balanced_targets_hand_computed() -> None:
    """6 unlearned and 8 retrained models: shadows 3 and 4, so 3 targets a side (the
    retrain's 4th target, 9, is never used). Gaussians N(1, sqrt(2/3)) and N(5, sqrt(1/2)):
    unlearned targets 1.0 and 0.2 are called unlearned (right), 3.9 retrained (wrong);
    retrain targets 5.5 and 4.4 retrained (right), 2.6 unlearned (wrong): 4/6."""
    unlearned = np.array([[0.0], [1.0], [2.0], [1.0], [3.9], [0.2]])
    retrain = np.array([[4.0], [5.0], [6.0], [5.0], [5.5], [2.6], [4.4], [9.0]])
    score = ulira_accuracy(unlearned, retrain)
    assert score.value == pytest.approx(4 / 6)
    assert score.per_example.tolist() == pytest.approx([4 / 6])
    # the unused retrain target cannot change it
    retrain[-1] = -100.0
    assert ulira_accuracy(unlearned, retrain).value == pytest.approx(4 / 6)


def test_ulira_separable_and_indistinguishable() -> None:
    far = ulira_accuracy(RNG.normal(5, 1, (32, 50)), RNG.normal(-5, 1, (32, 50)))
    assert far.value == 1.0
    retrain = RNG.normal(0, 1, (32, 500))
    assert ulira_accuracy(retrain.copy(), retrain).value == 0.5   # ties: called retrained
    alike = ulira_accuracy(RNG.normal(0, 1, (32, 500)), retrain)
    assert alike.value == pytest.approx(0.5, abs=0.03)
    assert ceiling(ulira_accuracy, retrain).value == pytest.approx(0.5, abs=0.03)


def test_klom_hand_computed_both_modes() -> None:
    """Edges [0, 2, 4]. Retrain (p) [0, 0, 2, 4], unlearned (q) [0, 2, 2, 2]. The reference
    drops the value at the right edge (4): p = (2/3, 1/3), q = (1/4, 3/4); fixed keeps it:
    p = (1/2, 1/2)."""
    unlearned, retrain = np.array([[0.0, 2, 2, 2]]).T, np.array([[0.0, 0, 2, 4]]).T
    ref = klom(unlearned, retrain, bins=2)
    want = 2 / 3 * math.log((2 / 3) / (1 / 4)) + 1 / 3 * math.log((1 / 3) / (3 / 4))
    assert ref.value == pytest.approx(want)
    fixed = klom(unlearned, retrain, bins=2, mode="fixed")
    assert fixed.value == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    flipped = klom(unlearned, retrain, bins=2, mode="fixed", direction="unlearned_retrain")
    assert flipped.value == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))


def test_klom_zero_for_identical_large_for_shifted() -> None:
    retrain = RNG.normal(0, 1, (32, 30))
    assert (klom(retrain.copy(), retrain).per_example == 0).all()
    shifted = klom(RNG.normal(8, 1, (32, 30)), retrain, mode="fixed")
    # disjoint bins: KL = log((1 + k eps) / eps) - H(p), eps = 1e-5, p over k <= 20 bins
    assert (math.log(1e5) - math.log(20) < shifted.per_example).all()
    assert (shifted.per_example < math.log(1e5)).all()
    assert 0 < ceiling(klom, retrain).value < shifted.value


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="same examples"):
        forget_score_F(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="same number of models"):
        forget_score_F(np.zeros((4, 3)), np.zeros((6, 3)))
    with pytest.raises(ValueError, match="mode=nope"):
        klom(np.zeros((4, 3)), np.zeros((4, 3)), mode="nope")
    with pytest.raises(ValueError, match="fewer than 2 shadow"):
        ulira_accuracy(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 4"):
        ceiling(klom, np.zeros((3, 2)))


def test_klom_reference_right_edge_gives_nan_fixed_counts_it() -> None:
    """All retrain margins at the joint maximum: eval.py's digitize drops them all (nan);
    the nan example is left out of the mean; mode="fixed" scores the separation."""
    unlearned = np.column_stack([np.linspace(-1, 1, 8), np.linspace(-1, 1, 8)])
    retrain = np.column_stack([np.full(8, 5.0), np.linspace(-1, 1, 8)])
    ref = klom(unlearned, retrain)
    assert np.isnan(ref.per_example[0]) and ref.per_example[1] == 0 and ref.value == 0
    assert klom(unlearned, retrain, mode="fixed").per_example[0] > 10

"""Per-example privacy scores that compare two ensembles of models, example by example.

Pure functions of numpy arrays shaped ``[models, examples]`` (``[models, examples, classes]``
for logits); no torch. Each score compares the outputs of N unlearned models with those of N
models retrained without the forget set:

- ``forget_score_F``: the NeurIPS 2023 Machine Unlearning Challenge's forgetting quality
  (google-deepmind/unlearning_evaluation, ``metric.py``), ported to CPU.
- ``ulira_accuracy``: U-LiRA (Hayes et al., 2024), a per-example Gaussian likelihood-ratio
  attack telling unlearned from retrained models; 0.5 is ideal.
- ``klom``: KLoM (Georgiev et al., "Attribute-to-Delete", ICLR 2025; RoyRin/data-unlearning-
  bench), the binned KL divergence of the margins of the two ensembles; 0 is ideal.
- ``ceiling``: any of them retrain-vs-retrain (the retrain ensemble split in halves), the best
  a method can score with this many models.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

# The challenge's constants (metric.py).
DELTA = 1e-5                 # the delta of (epsilon, delta)-unlearning
EPSILON_CAP = 50.0           # epsilon of an example whose unlearned outputs are a spike
PEAKY_RATIO = 0.01           # ... i.e. whose smaller/larger spread of the two ensembles is below
THRESHOLDS_PER_UNIT = 100    # decision thresholds per unit of logit-scaled confidence
TWO_THRESHOLD_BUFFER = 2.0   # the two-threshold rule's search margin around the peakier side
BUCKET_WIDTH = 0.5           # epsilon buckets [0, .5), [.5, 1), ... score 1, 1/2, 1/4, ...
LOG_FLOOR = 1e-45            # added inside the logs of the logit-scaled confidence
PAIRS_PER_CHUNK = 1 << 18    # two-threshold pairs evaluated at once (bounds memory)

# U-LiRA
SHADOW_FRACTION = 0.5        # of each ensemble, the share that fits the Gaussians (shadows)
STD_FLOOR = 1e-6             # keeps a Gaussian fitted to identical outputs proper

# KLoM (data-unlearning-bench, eval.py)
KLOM_BINS = 20
KLOM_EPS = 1e-5              # floor of the retrain-side bin probability where p > 0
KLOM_CLIP = 100.0            # margins are clipped to [-KLOM_CLIP, KLOM_CLIP]
KLOM_MODES = ("reference", "fixed")
KLOM_DIRECTIONS = ("retrain_unlearned", "unlearned_retrain")


@dataclass(frozen=True)
class Score:
    """An aggregate and the per-example values it aggregates."""

    value: float
    per_example: np.ndarray


# --------------------------------------------------------------------------- model outputs
def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log p(y|x) - log(1 - p(y|x)) per model and example, as metric.py computes it (softmax
    after removing the largest logit; ``exp`` in the logits' dtype, the rest in float64)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted).astype(np.float64)
    probs /= probs.sum(axis=-1, keepdims=True)
    index = _label_index(labels, probs)
    correct = np.take_along_axis(probs, index, axis=-1)[..., 0]
    np.put_along_axis(probs, index, 0.0, axis=-1)
    wrong = probs.sum(axis=-1)  # the others summed directly, not 1 - correct
    return np.log(correct + LOG_FLOOR) - np.log(wrong + LOG_FLOOR)


def margins(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """KLoM's margin: the correct logit minus the logsumexp of the other logits (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    index = _label_index(labels, z)
    correct = np.take_along_axis(z, index, axis=-1)[..., 0]
    others = z.copy()
    np.put_along_axis(others, index, -np.inf, axis=-1)
    top = others.max(axis=-1, keepdims=True)
    lse = top[..., 0] + np.log(np.exp(others - top).sum(axis=-1))
    return correct - lse


def accuracy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Top-1 accuracy in percent of each model: [models]."""
    return 100.0 * (logits.argmax(axis=-1) == labels).mean(axis=-1)


def _label_index(labels: np.ndarray, like: np.ndarray) -> np.ndarray:
    index = np.broadcast_to(np.asarray(labels)[..., None], like.shape[:-1] + (1,))
    return np.ascontiguousarray(index)


# --------------------------------------------------------------- the challenge's score F
def forget_score_F(unlearned: np.ndarray, retrain: np.ndarray, *, delta: float = DELTA
                   ) -> Score:
    """The challenge's forgetting quality F from logit-scaled confidences [models, examples].

    Per example, the side with the larger median is "positive"; epsilon is the largest over
    every single-threshold and two-threshold decision rule (metric.py's grids) of
    max(log(1-delta-FPR) - log(FNR), log(1-delta-FNR) - log(FPR)), with its special cases:
    a spike (spread ratio < 1%) or a perfect separation scores EPSILON_CAP, rules with FPR or
    FNR zero are skipped. Epsilons fall into buckets of BUCKET_WIDTH worth 1, 1/2, 1/4, ... up
    to ceil(log(N - 1)), N = unlearned models; F is the mean of the points.
    ``per_example`` holds the epsilons.
    """
    unlearned, retrain = _pair(unlearned, retrain)
    if unlearned.shape != retrain.shape:
        raise ValueError(f"forget_score_F: both sides need the same number of models, got "
                         f"{len(unlearned)} and {len(retrain)}")
    retrain_positive = np.median(retrain, axis=0) > np.median(unlearned, axis=0)
    pos = np.where(retrain_positive, retrain, unlearned)
    neg = np.where(retrain_positive, unlearned, retrain)
    eps = np.array([example_epsilon(pos[:, i], neg[:, i], delta) for i in range(pos.shape[1])])
    points = epsilon_points(eps, len(unlearned))
    return Score(float(points.mean()) if len(points) else float("nan"), eps)


def epsilon_points(eps: np.ndarray, num_models: int) -> np.ndarray:
    """Points per example: 1 for epsilon in [0, 0.5), 1/2 for [0.5, 1), ... 0 from
    ceil(log(num_models - 1)) on."""
    max_epsilon = math.ceil(math.log(num_models - 1)) if num_models > 1 else 0
    n_buckets = int(max_epsilon / BUCKET_WIDTH)
    bucket = np.floor(np.asarray(eps) / BUCKET_WIDTH)
    return np.where(bucket < n_buckets, 0.5 ** np.clip(bucket, 0, None), 0.0)


def final_score(forget_quality: float, retain_acc_unlearned: ArrayLike,
                retain_acc_retrain: ArrayLike, test_acc_unlearned: ArrayLike,
                test_acc_retrain: ArrayLike) -> float:
    """The challenge's final score F * (RA_U / RA_R) * (TA_U / TA_R), accuracies averaged over
    each ensemble's models."""
    return float(forget_quality * (np.mean(retain_acc_unlearned) / np.mean(retain_acc_retrain))
                 * (np.mean(test_acc_unlearned) / np.mean(test_acc_retrain)))


def example_epsilon(pos: np.ndarray, neg: np.ndarray, delta: float = DELTA) -> float:
    """Epsilon of one example from the confidences of the positive and negative side."""
    pos_spread, neg_spread = np.ptp(pos), np.ptp(neg)
    with np.errstate(divide="ignore", invalid="ignore"):
        if min(pos_spread, neg_spread) / max(pos_spread, neg_spread) < PEAKY_RATIO:
            return EPSILON_CAP
    # A rule's epsilon depends only on how many models of each side it calls positive: find
    # which (count, count) outcomes the rules reach, then evaluate each outcome once.
    reached = np.zeros((len(pos) + 1, len(neg) + 1), dtype=bool)
    for first, second in (_single_threshold_counts(pos, neg), *_two_threshold_counts(pos, neg)):
        reached[first, second] = True
    first, second = np.nonzero(reached)
    tpr, fnr = _rates(first, len(pos))
    fpr, tnr = _rates(second, len(neg))
    eps = _rule_epsilons(tpr, fnr, fpr, tnr, delta)
    keep = ~np.isnan(eps)
    if not keep.any():
        raise ValueError("every decision rule gave epsilon nan (metric.py asserts here too)")
    return float(np.clip(eps[keep].max(), 0.0, EPSILON_CAP))


def _rule_epsilons(tpr, fnr, fpr, tnr, delta: float) -> np.ndarray:
    """Epsilon of each decision rule; nan for rules that do not count (float32, as the
    reference computes its rates)."""
    perfect = (fpr + fnr == 0) & (tpr + tnr == 2)
    one_zero = (fpr * fnr == 0) & ~perfect
    keep_above = np.float32(1 - delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.fmax(np.log(keep_above - fpr) - np.log(fnr),
                      np.log(keep_above - fnr) - np.log(fpr))
    eps = np.clip(eps, 0, None)
    return np.where(perfect, np.inf, np.where(one_zero, np.nan, eps))


def _rates(called_positive: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(called positive, called negative) rates as float32 means over n models."""
    total = np.float32(n)
    return (called_positive.astype(np.float32) / total,
            (n - called_positive).astype(np.float32) / total)


def _single_threshold_counts(pos: np.ndarray, neg: np.ndarray):
    """Rules "confidence >= t means positive", t on a grid over both sides' range: how many
    models of each side each rule calls positive."""
    lo, hi = min(pos.min(), neg.min()), max(pos.max(), neg.max())
    t = _torch_linspace_f32(lo, hi, math.ceil((hi - lo) * THRESHOLDS_PER_UNIT))
    t = t.astype(np.float64)
    return (len(pos) - np.searchsorted(np.sort(pos), t, side="left"),
            len(neg) - np.searchsorted(np.sort(neg), t, side="left"))


def _two_threshold_counts(pos: np.ndarray, neg: np.ndarray):
    """Rules "left <= confidence <= right means the peakier side", in chunks of pairs: right
    thresholds around the peakier side, for each a grid of left thresholds one width below.
    Yields (peakier side, other side) counts called positive."""
    pos_spread, neg_spread = np.ptp(pos), np.ptp(neg)
    width = neg_spread if pos_spread > neg_spread else pos_spread
    if pos_spread >= neg_spread:
        pos, neg = neg, pos
    lo = pos.min() + width - TWO_THRESHOLD_BUFFER
    hi = pos.max() + TWO_THRESHOLD_BUFFER
    rights = np.linspace(lo, hi, num=math.ceil((hi - lo) * THRESHOLDS_PER_UNIT))
    n_left = math.ceil(2 * TWO_THRESHOLD_BUFFER * THRESHOLDS_PER_UNIT)
    sorted_pos, sorted_neg = np.sort(pos), np.sort(neg)
    per_chunk = max(1, PAIRS_PER_CHUNK // n_left)
    for start in range(0, len(rights), per_chunk):
        right = rights[start:start + per_chunk]
        shifted = right - width
        left = np.linspace(shifted - TWO_THRESHOLD_BUFFER, shifted + TWO_THRESHOLD_BUFFER,
                           num=n_left, axis=-1).ravel()
        yield (_count_between(sorted_pos, left, right, n_left),
               _count_between(sorted_neg, left, right, n_left))


def _count_between(sorted_values: np.ndarray, left: np.ndarray, right: np.ndarray,
                   per_right: int) -> np.ndarray:
    """How many values satisfy left <= v <= right, for each (left, right): ``per_right``
    consecutive lefts share each right (counted once, then repeated)."""
    below_right = np.repeat(np.searchsorted(sorted_values, right, side="right"), per_right)
    inside = below_right - np.searchsorted(sorted_values, left, side="left")
    return np.maximum(inside, 0)


def _torch_linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps)`` in its default float32, computed as torch's
    kernel does (float32 step, from the start for the first half, from the end for the rest)."""
    if steps <= 0:
        return np.empty(0, dtype=np.float32)
    start32, end32 = np.float32(start), np.float32(end)
    if steps == 1:
        return np.array([start32])
    step = (end32 - start32) / np.float32(steps - 1)
    i = np.arange(steps)
    from_start = start32 + step * i.astype(np.float32)
    from_end = end32 - step * (steps - i - 1).astype(np.float32)
    return np.where(i < steps // 2, from_start, from_end)


# ------------------------------------------------------------------------------ U-LiRA
def ulira_accuracy(unlearned: np.ndarray, retrain: np.ndarray, *,
                   shadow_fraction: float = SHADOW_FRACTION) -> Score:
    """U-LiRA: per example, Gaussians fitted to the logit-scaled confidences of the shadow
    models of each side (the first ``shadow_fraction`` of each ensemble); the remaining
    models are the targets, as many unlearned as retrained (balanced), each classified by
    the likelihood ratio (unlearned if its likelihood is strictly higher). The attack's
    accuracy per example, averaged: 0.5 means unlearned and retrained are indistinguishable.
    """
    unlearned, retrain = _pair(unlearned, retrain)
    shadows = [_shadow_count(len(side), shadow_fraction) for side in (unlearned, retrain)]
    n_targets = min(len(unlearned) - shadows[0], len(retrain) - shadows[1])
    if n_targets < 1:
        raise ValueError(f"ulira_accuracy: no target models left after {shadows} shadows")
    fits = [(side[:s].mean(axis=0), np.maximum(side[:s].std(axis=0), STD_FLOOR))
            for side, s in zip((unlearned, retrain), shadows, strict=True)]

    def says_unlearned(conf: np.ndarray) -> np.ndarray:
        (mu_in, sd_in), (mu_out, sd_out) = fits
        return _gaussian_logpdf(conf, mu_in, sd_in) > _gaussian_logpdf(conf, mu_out, sd_out)

    hits = np.concatenate([says_unlearned(unlearned[shadows[0]:shadows[0] + n_targets]),
                           ~says_unlearned(retrain[shadows[1]:shadows[1] + n_targets])])
    per_example = hits.mean(axis=0)
    return Score(float(per_example.mean()), per_example)


def _shadow_count(n_models: int, fraction: float) -> int:
    count = int(round(n_models * fraction))
    if count < 2:
        raise ValueError(f"ulira_accuracy: {n_models} models x shadow_fraction={fraction} "
                         "leaves fewer than 2 shadow models to fit a Gaussian")
    return count


def _gaussian_logpdf(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std)


# -------------------------------------------------------------------------------- KLoM
def klom(unlearned: np.ndarray, retrain: np.ndarray, *, bins: int = KLOM_BINS,
         mode: str = "reference", direction: str = "retrain_unlearned") -> Score:
    """KLoM from margins [models, examples]: per example, both sides' margins (clipped to
    +-KLOM_CLIP) are binned on ``bins`` equal bins spanning their joint range and the KL
    divergence of the two histograms is taken, the second side's probability floored at
    KLOM_EPS where the first is positive. ``value`` is the mean over examples (leaving out
    the nan ones of ``mode="reference"``, which ``per_example`` keeps).

    ``direction``: the reference (run.py) passes the retrain margins first, so its KLoM is
    KL(retrain || unlearned) ("retrain_unlearned"); eval.py's argument names suggest the
    reverse ("unlearned_retrain"). ``mode="reference"`` keeps np.digitize's right edge as
    eval.py has it: values equal to the joint maximum fall outside every bin and are dropped
    (an example whose first side all sits at the maximum gets nan); ``"fixed"`` counts them
    in the last bin.
    """
    if mode not in KLOM_MODES:
        raise ValueError(f"klom: mode={mode} is invalid; allowed: {', '.join(KLOM_MODES)}")
    if direction not in KLOM_DIRECTIONS:
        raise ValueError(f"klom: direction={direction} is invalid; allowed: "
                         f"{', '.join(KLOM_DIRECTIONS)}")
    unlearned, retrain = _pair(unlearned, retrain)
    p_side, q_side = ((retrain, unlearned) if direction == "retrain_unlearned"
                      else (unlearned, retrain))
    p_side = np.clip(p_side, -KLOM_CLIP, KLOM_CLIP)
    q_side = np.clip(q_side, -KLOM_CLIP, KLOM_CLIP)
    lo = np.minimum(p_side.min(axis=0), q_side.min(axis=0))
    hi = np.maximum(p_side.max(axis=0), q_side.max(axis=0))
    hi = np.where(lo >= hi, lo + 1, hi)
    edges = np.linspace(lo, hi, bins + 1, axis=-1)                        # [examples, bins+1]
    p = _bin_probabilities(p_side, edges, bins, mode)
    q = _bin_probabilities(q_side, edges, bins, mode)
    q = np.where(p > 0, np.maximum(q, KLOM_EPS), q)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = p / p.sum(axis=1, keepdims=True)      # scipy.stats.entropy normalises both sides
        q = q / q.sum(axis=1, keepdims=True)
        per_example = np.where(p > 0, p * np.log(p / q), 0.0).sum(axis=1)
    per_example = np.where(np.isnan(p).any(axis=1), np.nan, per_example)
    with np.errstate(invalid="ignore"):
        value = float(np.nanmean(per_example)) if (~np.isnan(per_example)).any() else np.nan
    return Score(value, per_example)


def _bin_probabilities(values: np.ndarray, edges: np.ndarray, bins: int, mode: str
                       ) -> np.ndarray:
    """Share of each example's models per bin: [examples, bins]."""
    index = (values.T[:, :, None] >= edges[:, None, :]).sum(axis=2)   # np.digitize, 1-based
    if mode == "fixed":
        index = np.minimum(index, bins)
    counts = np.stack([(index == b).sum(axis=1) for b in range(1, bins + 1)], axis=1)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, counts / np.maximum(total, 1), 0.0)


# ----------------------------------------------------------------------------- ceiling
def ceiling(score: Callable[..., Score], retrain: np.ndarray, **kwargs) -> Score:
    """``score`` retrain-vs-retrain: the first half of the retrain ensemble plays the
    unlearned models, the second half the retrained ones (what perfect unlearning scores
    with N/2 models per side)."""
    half = len(retrain) // 2
    if half < 2:
        raise ValueError(f"ceiling: needs at least 4 retrain models, got {len(retrain)}")
    return score(retrain[:half], retrain[half:2 * half], **kwargs)


def _pair(unlearned: np.ndarray, retrain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unlearned, retrain = np.asarray(unlearned), np.asarray(retrain)
    if unlearned.ndim != 2 or retrain.ndim != 2 or unlearned.shape[1] != retrain.shape[1]:
        raise ValueError(f"expected [models, examples] arrays over the same examples, got "
                         f"{unlearned.shape} and {retrain.shape}")
    if len(unlearned) < 2 or len(retrain) < 2:
        raise ValueError("need at least 2 models per side")
    return unlearned, retrain


# ------------------------------------------------------------- two ensembles compared
SPLITS = ("forget", "retain", "test")


@dataclass(frozen=True)
class EnsembleOutputs:
    """The logits ``[models, examples, classes]`` of one ensemble on each split, and the
    splits' labels ``[examples]``."""

    logits: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return len(next(iter(self.logits.values())))

    def members(self, which: slice) -> EnsembleOutputs:
        return EnsembleOutputs({s: v[which] for s, v in self.logits.items()}, self.labels)

    def confidence(self, split: str) -> np.ndarray:
        return logit_scaled_confidence(self.logits[split], self.labels[split])

    def margins(self, split: str) -> np.ndarray:
        return margins(self.logits[split], self.labels[split])

    def accuracy(self, split: str) -> np.ndarray:
        return accuracy(self.logits[split], self.labels[split])


@dataclass(frozen=True)
class Comparison:
    """Every score of one ensemble against retrained models: ``values[(score, split)]``, and
    the per-example values on D_f."""

    values: dict[tuple[str, str], float]
    epsilon: np.ndarray
    ulira: np.ndarray
    klom_forget: np.ndarray


def compare(unlearned: EnsembleOutputs, retrain: EnsembleOutputs, *, delta: float = DELTA,
            shadow_fraction: float = SHADOW_FRACTION, klom_bins: int = KLOM_BINS,
            klom_mode: str = "reference", klom_direction: str = "retrain_unlearned"
            ) -> Comparison:
    """F, the final score, the median epsilon and U-LiRA on D_f; KLoM (mean and 95th
    percentile over examples) and the unlearned side's mean accuracy on every split."""
    forget = forget_score_F(unlearned.confidence("forget"), retrain.confidence("forget"),
                            delta=delta)
    ulira = ulira_accuracy(unlearned.confidence("forget"), retrain.confidence("forget"),
                           shadow_fraction=shadow_fraction)
    values = {
        ("forget_score_F", "forget"): forget.value,
        ("final_score", "all"): final_score(forget.value, unlearned.accuracy("retain"),
                                            retrain.accuracy("retain"),
                                            unlearned.accuracy("test"),
                                            retrain.accuracy("test")),
        ("epsilon_median", "forget"): float(np.median(forget.per_example)),
        ("ulira_acc", "forget"): ulira.value,
    }
    klom_forget = np.empty(0)
    for split in SPLITS:
        score = klom(unlearned.margins(split), retrain.margins(split), bins=klom_bins,
                     mode=klom_mode, direction=klom_direction)
        finite = score.per_example[~np.isnan(score.per_example)]
        values[("klom", split)] = score.value
        values[("klom_p95", split)] = float(np.quantile(finite, 0.95)) if len(finite) else np.nan
        values[("accuracy", split)] = float(unlearned.accuracy(split).mean())
        if split == "forget":
            klom_forget = score.per_example
    return Comparison(values, forget.per_example, ulira.per_example, klom_forget)


def comparison_to_json(c: Comparison) -> dict:
    """A JSON-able form of a comparison (to memoise it beside the cached ensembles)."""
    return {"values": [[score, split, value] for (score, split), value in c.values.items()],
            "epsilon": c.epsilon.tolist(), "ulira": c.ulira.tolist(),
            "klom_forget": c.klom_forget.tolist()}


def comparison_from_json(d: dict) -> Comparison:
    return Comparison({(score, split): float(v) for score, split, v in d["values"]},
                      np.asarray(d["epsilon"], dtype=float), np.asarray(d["ulira"], dtype=float),
                      np.asarray(d["klom_forget"], dtype=float))

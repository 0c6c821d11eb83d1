"""The results schema, torch-free: columns, the keys that never change a result, the gaps to
the retrain and the config hash. Reports (sweep summary, leaderboard, plots) import this and
never torch."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# Identity of a job's rows; every task shares them.
ID_COLUMNS = ["run_id", "dataset", "model", "scenario", "seed", "method", "role", "status"]
# Classification metrics (DESIGN.md "Metrics"), in table order.
SCORES = ["UA", "RA", "TA", "FTA", "MIA"]
# Scores only some scenarios produce (backdoor: attack success rate), shown where present.
SCENARIO_SCORES = ["ASR"]
COST = ["RTE_s", "speedup"]
# The papers' "Avg. Gap": |X(unlearned) - X(retrain)| for these, and their mean.
GAP_METRICS = ("UA", "RA", "TA", "MIA")
GAPS = [f"gap_{m}" for m in GAP_METRICS]
AVG_GAP = "avg_gap"
COLUMNS = [*ID_COLUMNS, *SCORES, *COST, *GAPS, AVG_GAP, "config_hash"]
# The retain-only relearn attack (conf/eval/default.yaml `relearn`): forget accuracy after it
# and its gap to the retrain's, never part of avg_gap. Shown wherever a table has them.
TAMPER = ["relearn_FA", "gap_relearn"]
# Metrics of the zero-shot and teacher-student papers (conf/eval, switched off by null): the
# Anamnesis index (relearn time vs the retrain's; `_censored` = 1 when it is a bound), ZRF,
# and the model-inversion success rate. Shown wherever a job has them.
EXTRA_SCORES = ["AIN", "AIN_censored", "ZRF", "MI_success"]
# What the console table of one job shows.
SHOWN = ["method", "role", "status", *SCORES, *SCENARIO_SCORES, *EXTRA_SCORES, *COST, *GAPS,
         AVG_GAP, *TAMPER]
# One row per job in a sweep summary.
SUMMARY_COLUMNS = ["rank", "dataset", "model", "scenario", "seed", "method", "status", *SCORES,
                   *SCENARIO_SCORES, *EXTRA_SCORES, *COST, AVG_GAP, *TAMPER]
# Columns that tell jobs of one table apart beyond the method (they come from producers).
PRODUCER_COLUMNS = ["sparsity", "sparsity_rate"]

# task=inpainting (DESIGN.md "Tasks beyond classification"): metrics in a judge classifier's
# feature space, on held-out retain and forget images; each (but the p-value) with its gap to
# the retrain's, and `summary`, the task's objective: the mean of 100 x the gaps of the
# bounded similarity metrics (retain_cos, forget_cos, forget_recognised), in points like avg_gap.
GEN_SPLIT_METRICS = ("FD", "KID", "IS", "cos")
GEN_SCORES = [*(f"{split}_{m}" for split in ("retain", "forget") for m in GEN_SPLIT_METRICS),
              "forget_recognised", "cos_pvalue"]
GEN_GAP_METRICS = tuple(GEN_SCORES[:-1])
GEN_GAPS = [f"gap_{m}" for m in GEN_GAP_METRICS]
SUMMARY = "summary"
SUMMARY_METRICS = ("retain_cos", "forget_cos", "forget_recognised")
GEN_COLUMNS = [*ID_COLUMNS, *GEN_SCORES, *COST, *GEN_GAPS, SUMMARY, "config_hash"]
GEN_SHOWN = ["method", "role", "status", "retain_FD", "retain_IS", "retain_cos", "forget_FD",
             "forget_IS", "forget_cos", "forget_recognised", *COST, SUMMARY]
GEN_SHOWN_METRICS = [c for c in GEN_SHOWN if c not in ("method", "role", "status")]
# What rows are ranked by (sweep summary, leaderboard): the first of these a row has,
# avg_gap for classification, summary for task=inpainting.
RANKED_BY = (AVG_GAP, SUMMARY)


def ranking_value(row: Mapping[str, Any]) -> float:
    """The row's avg_gap, else its summary gap (tasks without avg_gap); NaN with neither."""
    for column in RANKED_BY:
        try:
            value = float(row[column])
        except (KeyError, TypeError, ValueError):
            continue
        if not math.isnan(value):
            return value
    return math.nan

ROLES = ("original", "retrain", "unlearned")
# The original model ranked among the methods: what doing nothing scores.
ORIGINAL_LABEL = "original (do nothing)"
REFERENCE_METHOD = "retrain"  # the reference: gaps 0 by definition, never ranked
DONE = "done"  # marker file, written last: a job folder without it is unfinished
SEEDS_DIR = "seeds"  # a tuning trial's other seeds: <trial job>/seeds/<seed>/, job folders

# Top-level config keys that change where things go or how they print, never what is
# computed: left out of the config hash (and so of resume matching).
NON_SEMANTIC_KEYS = ("progress", "results_dir", "cache_dir", "data_root", "hydra",
                     "allow_targets", "tune")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config_hash(resolved: Mapping[str, Any]) -> str:
    """sha256 of the resolved config without its non-semantic keys."""
    semantic = {k: v for k, v in resolved.items() if k not in NON_SEMANTIC_KEYS}
    return sha256_text(canonical_json(semantic))


def cost_ratio(row: Mapping[str, Any]) -> float:
    """The unlearning step's cost over the retrain's: the row's ``cost_ratio`` (CPU time on
    a CPU, see runner.cost_ratio), else 1 / speedup (wall clock); nan if unknown."""
    try:
        recorded = float(row.get("cost_ratio", math.nan))
        speedup = float(row.get("speedup", math.nan))
    except (TypeError, ValueError):
        return math.nan
    if not math.isnan(recorded):
        return recorded
    if math.isnan(speedup):
        return math.nan
    return 0.0 if math.isinf(speedup) else (1.0 / speedup if speedup > 0 else math.inf)


def mean_objective(values: Sequence[float]) -> float:
    """A tuning trial's objective from its seeds' objectives: their mean, inf when any seed
    failed or was infeasible (a setting that fails on one seed of three is not selected)."""
    finite = [float(v) for v in values if math.isfinite(float(v))]
    return math.fsum(finite) / len(finite) if finite and len(finite) == len(values) \
        else math.inf


def within_budget(row: Mapping[str, Any], max_cost: float) -> bool:
    """The tuning protocol's feasibility: the step costs at most ``max_cost`` x the retrain."""
    ratio = cost_ratio(row)
    return not math.isnan(ratio) and ratio <= max_cost


def gap_metrics(row: Mapping[str, Any], reference: Mapping[str, Any],
                metrics: tuple[str, ...] = GAP_METRICS) -> dict[str, float]:
    """|X(row) - X(reference)| for each metric, and their mean as ``avg_gap``."""
    gaps = {f"gap_{m}": abs(float(row[m]) - float(reference[m])) for m in metrics}
    values = list(gaps.values())
    gaps[AVG_GAP] = math.fsum(values) / len(values) if values else math.nan
    return gaps


# Keys of a metric's config node (conf/eval) that are not parameters of its function.
METRIC_KEYS = ("_target_", "gaps", "relative")

# A metric column with a companion `<column>_censored` (1.0 = the value is a bound, e.g. a
# relearn that hit its step cap, not an exact number).
CENSORED_SUFFIX = "_censored"


@dataclass(frozen=True)
class RelativeColumn:
    """A column computed against the retrain's row (declared under ``relative:`` of a metric's
    config in conf/eval): ``ratio`` = X(model) / X(retrain), ``difference`` = X(model) −
    X(retrain), where X is the metric column ``of``. When X has a `_censored` companion in
    either row, the new column gets one too: censored if either side is."""

    of: str
    op: Literal["ratio", "difference"] = "ratio"


def _number(row: Mapping[str, Any], key: str) -> float:
    try:
        value = float(row.get(key, math.nan))
    except (TypeError, ValueError):
        return math.nan
    return value


def relative_columns(row: Mapping[str, Any], reference: Mapping[str, Any],
                     specs: Mapping[str, RelativeColumn]) -> dict[str, float]:
    """The declared reference-relative columns of ``row`` (NaN where undefined)."""
    out: dict[str, float] = {}
    for name, spec in specs.items():
        a, b = _number(row, spec.of), _number(reference, spec.of)
        if spec.op == "ratio":
            out[name] = a / b if math.isfinite(a) and math.isfinite(b) and b != 0 else math.nan
        else:
            out[name] = a - b
        flag = spec.of + CENSORED_SUFFIX
        if flag in row or flag in reference:
            flags = [_number(r, flag) for r in (row, reference)]
            out[name + CENSORED_SUFFIX] = float(any(f == 1.0 for f in flags))
    return out

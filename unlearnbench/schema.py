"""The results schema, torch-free: columns, the keys that never change a result, the gaps to
the retrain and the config hash. Reports (sweep summary, leaderboard, plots) import this and
never torch."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

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
# What the console table of one job shows.
SHOWN = ["method", "role", "status", *SCORES, *SCENARIO_SCORES, *COST, *GAPS, AVG_GAP]
# One row per job in a sweep summary.
SUMMARY_COLUMNS = ["dataset", "model", "scenario", "seed", "method", "status", *SCORES,
                   *SCENARIO_SCORES, *COST, AVG_GAP]
# Columns that tell jobs of one table apart beyond the method (they come from producers).
PRODUCER_COLUMNS = ["sparsity", "sparsity_rate"]

ROLES = ("original", "retrain", "unlearned")
DONE = "done"  # marker file, written last: a job folder without it is unfinished

# Top-level config keys that change where things go or how they print, never what is
# computed: left out of the config hash (and so of resume matching).
NON_SEMANTIC_KEYS = ("progress", "results_dir", "cache_dir", "data_root", "hydra",
                     "allow_targets")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config_hash(resolved: Mapping[str, Any]) -> str:
    """sha256 of the resolved config without its non-semantic keys."""
    semantic = {k: v for k, v in resolved.items() if k not in NON_SEMANTIC_KEYS}
    return sha256_text(canonical_json(semantic))


def gap_metrics(row: Mapping[str, Any], reference: Mapping[str, Any],
                metrics: tuple[str, ...] = GAP_METRICS) -> dict[str, float]:
    """|X(row) - X(reference)| for each metric, and their mean as ``avg_gap``."""
    gaps = {f"gap_{m}": abs(float(row[m]) - float(reference[m])) for m in metrics}
    values = list(gaps.values())
    gaps[AVG_GAP] = math.fsum(values) / len(values) if values else math.nan
    return gaps

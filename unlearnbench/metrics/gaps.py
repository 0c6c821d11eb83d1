"""Gaps to the retrained reference: the papers' "Avg. Gap"."""

from __future__ import annotations

import math

GAP_METRICS = ("UA", "RA", "TA", "MIA")


def gap_metrics(row: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """|X(model) - X(retrain)| for X in UA, RA, TA, MIA, and their mean."""
    gaps = {f"gap_{m}": abs(row[m] - reference[m]) for m in GAP_METRICS}
    values = list(gaps.values())
    gaps["avg_gap"] = math.fsum(values) / len(values)
    return gaps

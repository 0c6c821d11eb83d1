"""Leaderboard plots (matplotlib, PNG): a radar chart per method and avg_gap vs speedup."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .tables import Table, ci95

AXES = ["UA", "RA", "TA", "FTA", "MIA"]
PLAIN = {"parse_math": False}  # labels come from result files: a `$` is text, not mathtext


def _finite(r: dict[str, Any], m: str) -> bool:
    return math.isfinite(r[m][0])


def radar(table: Table, path: Path) -> Path | None:
    """One polar panel per method: its UA, RA, TA, (FTA,) MIA, with the retrain's dashed."""
    ref = next((r for r in table.rows if r["kind"] == "reference"), None)
    methods = [r for r in table.rows if r["kind"] != "reference" and r["n"] > 0]
    axes = [m for m in AXES if ref is not None and _finite(ref, m)]
    if ref is None or not methods or len(axes) < 3:
        return None
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False).tolist()
    cols = min(4, len(methods))
    rows = math.ceil(len(methods) / cols)
    fig, grid = plt.subplots(rows, cols, subplot_kw={"polar": True},
                             figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in grid.flat[len(methods):]:
        ax.set_visible(False)

    def polygon(r: dict[str, Any]) -> list[float]:
        values = [r[m][0] for m in axes]
        return values + values[:1]

    for ax, r in zip(grid.flat, methods, strict=False):
        ax.plot(angles + angles[:1], polygon(ref), "k--", lw=1, label="retrain")
        ax.plot(angles + angles[:1], polygon(r), color="C0", lw=1.5)
        ax.fill(angles + angles[:1], polygon(r), color="C0", alpha=0.25)
        ax.set_xticks(angles, axes, fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_yticks([25, 50, 75, 100], ["", "", "", ""])
        ax.set_title(f"{r['label']}\navg_gap {r['avg_gap'][0]:.2f}", fontsize=9, **PLAIN)
    fig.suptitle(f"{table.title}: metrics (%) vs retrain (dashed)", fontsize=10, **PLAIN)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def scatter(table: Table, path: Path) -> Path | None:
    """avg_gap (lower is better) against speedup over retraining (log scale), 95% CI bars."""
    points = [r for r in table.rows if r["kind"] != "original" and r["n"] > 0
              and _finite(r, "avg_gap") and _finite(r, "speedup") and r["speedup"][0] > 0]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for i, r in enumerate(points):
        gap, speed = r["avg_gap"][0], r["speedup"][0]
        gap_ci, speed_ci = ci95(r["avg_gap"][1], r["n"]), ci95(r["speedup"][1], r["n"])
        ref = r["kind"] == "reference"
        ax.errorbar(speed, gap, yerr=0 if math.isnan(gap_ci) else gap_ci,
                    xerr=0 if math.isnan(speed_ci) else speed_ci, fmt="*" if ref else "o",
                    color="k" if ref else f"C{i % 10}", ms=10 if ref else 6, capsize=3)
        ax.annotate(r["label"], (speed, gap), textcoords="offset points", xytext=(5, 4),
                    fontsize=8, **PLAIN)
    ax.set_xscale("log")
    ax.set_xlabel("speedup over retraining (×, log scale)")
    ax.set_ylabel("avg_gap to retrain (lower is better)")
    ax.set_title(table.title, fontsize=10, **PLAIN)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def draw(table: Table, folder: Path) -> list[Path]:
    """Both plots of one table; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    made = [radar(table, folder / f"radar_{table.slug}.png"),
            scatter(table, folder / f"scatter_{table.slug}.png")]
    return [p for p in made if p is not None]


def epsilon_histogram(path: Path, epsilons: dict[str, np.ndarray], max_epsilon: float,
                      title: str) -> Path:
    """Per-example epsilon of each comparison (e.g. the method, the original, the ceiling) on
    the forgetting score's buckets of 0.5; epsilons from ``max_epsilon`` on (no points,
    spikes included) share the last bar."""
    width = 0.5
    edges = np.arange(0.0, max_epsilon + 2 * width, width)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    series = list(epsilons.items())
    bar = width / (len(series) + 1)
    for i, (label, eps) in enumerate(series):
        clipped = np.minimum(np.asarray(eps, dtype=float), edges[-1] - width / 2)
        counts, _ = np.histogram(clipped, bins=edges)
        share = counts / max(len(clipped), 1)
        ax.bar(edges[:-1] + (i + 0.5) * bar, share, width=bar, align="edge",
               label=f"{label} (median {np.median(eps):.2f})")
    ax.axvline(max_epsilon, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(edges[:-1])
    ax.set_xticklabels([f"{e:g}" for e in edges[:-2]] + [f"≥{edges[-2]:g}"], fontsize=7)
    ax.set_xlabel("per-example ε (buckets of 0.5 score 1, ½, ¼, …; 0 from the dotted line)",
                  **PLAIN)
    ax.set_ylabel("share of D_f", **PLAIN)
    ax.set_title(title, fontsize=9, **PLAIN)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")  # path may be a temp name
    plt.close(fig)
    return path

"""The sweep summary: every finished job of a sweep folder in one table, ranked."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from ..results import make_console, render
from ..schema import (
    AVG_GAP,
    DONE,
    GAP_METRICS,
    GEN_SHOWN_METRICS,
    ORIGINAL_LABEL,
    PRODUCER_COLUMNS,
    RANKED_BY,
    REFERENCE_METHOD,
    SUMMARY,
    SUMMARY_COLUMNS,
    gap_metrics,
    ranking_value,
)


def ci95(std: float, n: int) -> float:
    """Half-width of the t-based 95% confidence interval of a mean of ``n`` seeds."""
    from scipy.stats import t

    if n < 2 or math.isnan(std):
        return math.nan
    return float(t.ppf(0.975, n - 1)) * std / math.sqrt(n)


def collect(root: Path) -> tuple[pd.DataFrame, int]:
    """Every finished job's rows under ``root``, and the number of unfinished jobs skipped."""
    frames, unfinished = [], 0
    for csv in sorted(root.rglob("metrics.csv")):
        if (csv.parent / DONE).exists():
            frames.append(pd.read_csv(csv).assign(job=str(csv.parent)))
        else:
            unfinished += 1
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), unfinished


def _originals(df: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """The original model of each group once, with its gaps to the same job's retrain,
    labelled as doing nothing."""
    out = []
    for _, job in df.groupby("job", sort=False):
        roles = job.drop_duplicates("role").set_index("role")
        if not {"original", "retrain"} <= set(roles.index):
            continue
        orig = roles.loc["original"].copy()
        if all(m in orig.index for m in GAP_METRICS):  # else another task's: its own gaps
            orig.update(pd.Series(gap_metrics(orig, roles.loc["retrain"], GAP_METRICS)))
        orig["role"], orig["method"] = "original", ORIGINAL_LABEL
        out.append(orig)
    if not out:
        return pd.DataFrame()
    # Jobs of one group share their original (same data, model, recipe, seed): once each.
    frame = pd.DataFrame(out)
    return frame.drop_duplicates(subset=[c for c in [*group, *GAP_METRICS, SUMMARY]
                                         if c in frame.columns])


def ranked(df: pd.DataFrame) -> pd.DataFrame:
    """One row per job (its unlearned model) and the original (do nothing) of each dataset x
    model x scenario x seed, ranked by avg_gap (task=inpainting: summary) within that group:
    ``retrain`` is the reference (``ref``), failed rows come last (``–``)."""
    group = [c for c in ["dataset", "model", "scenario", *PRODUCER_COLUMNS, "seed"]
             if c in df.columns]
    rows = pd.concat([df[df.role == "unlearned"], _originals(df, group)], ignore_index=True)

    def order(row: pd.Series) -> tuple[int, float]:
        gap = ranking_value(row)
        if row.method == REFERENCE_METHOD:
            return 0, 0.0
        if row.get("status") != "ok" or math.isnan(gap):
            return 2, math.inf
        return 1, gap

    keyed = rows.assign(_kind=[order(r)[0] for _, r in rows.iterrows()],
                        _gap=[order(r)[1] for _, r in rows.iterrows()])
    keyed = keyed.sort_values([*group, "_kind", "_gap", "method"], kind="stable")
    ranks = []
    for _, part in keyed.groupby(group, sort=False, dropna=False):
        n = 0
        for _, r in part.iterrows():
            n += r._kind == 1
            ranks.append({0: "ref", 1: str(n), 2: "–"}[r._kind])
    keyed["rank"] = ranks if len(keyed) else []
    return keyed.drop(columns=["_kind", "_gap", "job"], errors="ignore").reset_index(drop=True)


def summarise(sweep_dir: Path, console: Console | None = None) -> pd.DataFrame:
    """Write summary.csv and summary.md in the sweep folder and print the comparison: every
    job's unlearned model and the original (do nothing), ranked by avg_gap."""
    console = console or make_console()
    df, unfinished = collect(sweep_dir)
    if df.empty:
        console.print(f"sweep {sweep_dir}: no finished job")
        return df
    rows = ranked(df)
    rows.to_csv(sweep_dir / "summary.csv", index=False)
    # (task=inpainting's rows have the generative columns and no avg_gap: ranked by summary)
    cols = [c for c in dict.fromkeys([*SUMMARY_COLUMNS, *GEN_SHOWN_METRICS, *PRODUCER_COLUMNS])
            if c in rows.columns]
    by = next((c for c in RANKED_BY if c in rows.columns), AVG_GAP)
    (sweep_dir / "summary.md").write_text(rows[cols].to_markdown(index=False, floatfmt=".2f"))
    jobs = rows[rows.role == "unlearned"]
    failed = int((jobs.status == "failed").sum()) if "status" in jobs.columns else 0
    note = f", {failed} failed" if failed else ""
    note += f" ({unfinished} unfinished job(s) ignored)" if unfinished else ""
    # On the console, a setting every row shares goes into the title and empty columns go,
    # so the table fits a terminal; summary.csv / summary.md keep every column.
    shared = [c for c in ("dataset", "model", "scenario", "seed")
              if c in rows.columns and rows[c].nunique(dropna=False) == 1]
    constant = [c for c in PRODUCER_COLUMNS
                if c in rows.columns and rows[c].nunique(dropna=False) == 1]
    shown = [c for c in cols if c not in shared + constant and rows[c].notna().any()]
    setting = " / ".join(f"{rows[c].iloc[0]}" if c != "seed" else f"seed {rows[c].iloc[0]}"
                         for c in shared)
    render(rows, f"sweep summary{': ' + setting if setting else ''}: {len(jobs)} job(s){note}, "
           f"ranked by {by} (lower is closer to retraining) -> "
           f"{sweep_dir / 'summary.csv'}", console, shown)
    return rows


@dataclass
class Table:
    """One leaderboard table: a dataset x model x scenario (x context) and its ranked rows."""

    dataset: str
    model: str
    scenario: str
    context: str
    rows: list[dict[str, Any]]

    @property
    def title(self) -> str:
        base = f"{self.dataset} · {self.model} · {self.scenario}"
        return f"{base} ({self.context})" if self.context else base

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "_", self.title).strip("_").lower()

"""The sweep summary: every finished job of a sweep folder in one table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from ..results import make_console, render
from ..schema import DONE, PRODUCER_COLUMNS, SUMMARY_COLUMNS


def collect(root: Path) -> tuple[pd.DataFrame, int]:
    """Every finished job's rows under ``root``, and the number of unfinished jobs skipped."""
    frames, unfinished = [], 0
    for csv in sorted(root.rglob("metrics.csv")):
        if (csv.parent / DONE).exists():
            frames.append(pd.read_csv(csv))
        else:
            unfinished += 1
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), unfinished


def summarise(sweep_dir: Path, console: Console | None = None) -> pd.DataFrame:
    """Write summary.csv and summary.md in the sweep folder and print the comparison."""
    console = console or make_console()
    df, unfinished = collect(sweep_dir)
    if df.empty:
        console.print(f"sweep {sweep_dir}: no finished job")
        return df
    # One row per job: the unlearned model.
    rows = df[df.role == "unlearned"].copy()
    keys = [c for c in ["dataset", "model", "scenario", *PRODUCER_COLUMNS, "seed", "method"]
            if c in rows.columns]
    rows = rows.sort_values(keys).reset_index(drop=True)
    rows.to_csv(sweep_dir / "summary.csv", index=False)
    cols = [c for c in [*SUMMARY_COLUMNS, *PRODUCER_COLUMNS] if c in rows.columns]
    (sweep_dir / "summary.md").write_text(rows[cols].to_markdown(index=False, floatfmt=".2f"))
    failed = int((rows.status == "failed").sum()) if "status" in rows.columns else 0
    note = f", {failed} failed" if failed else ""
    note += f" ({unfinished} unfinished job(s) ignored)" if unfinished else ""
    render(rows, f"sweep summary: {len(rows)} job(s){note} -> {sweep_dir / 'summary.csv'}",
           console, cols)
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

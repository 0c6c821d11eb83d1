"""The tidy per-job results: metrics.csv, resolved config, forget indices, `done` marker."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

COLUMNS = [
    "run_id", "dataset", "model", "scenario", "seed", "method", "role", "status",
    "UA", "RA", "TA", "FTA", "MIA", "RTE_s", "speedup",
    "gap_UA", "gap_RA", "gap_TA", "gap_MIA", "avg_gap", "config_hash",
]
SHOWN = ["method", "role", "status", "UA", "RA", "TA", "FTA", "MIA", "RTE_s", "speedup",
         "gap_UA", "gap_RA", "gap_TA", "gap_MIA", "avg_gap"]
DONE = "done"


def tidy(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in the schema's column order; method-specific extras follow, sorted."""
    df = pd.DataFrame(rows)
    extras = sorted(c for c in df.columns if c not in COLUMNS)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    return df[COLUMNS + extras]


def write_job(out_dir: Path, df: pd.DataFrame, forget: np.ndarray | None,
              texts: dict[str, str]) -> None:
    """Write a job's files; the `done` marker goes last so a crash leaves no `done` job.
    ``forget`` is None for a job that crashed before its forget set existed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DONE).unlink(missing_ok=True)
    df.to_csv(out_dir / "metrics.csv", index=False)
    if forget is not None:
        np.save(out_dir / "forget_indices.npy", forget.astype(np.int64), allow_pickle=False)
    for name, text in texts.items():
        (out_dir / name).write_text(text)
    (out_dir / DONE).write_text("ok\n")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def render(df: pd.DataFrame, title: str, console: Console | None = None,
           columns: list[str] | None = None) -> None:
    """Print the rows as a rich table."""
    columns = [c for c in (columns or SHOWN) if c in df.columns]
    if "reason" in df.columns and df["reason"].notna().any():
        columns.append("reason")
    table = Table(title=title, header_style="bold")
    for c in columns:
        table.add_column(c, justify="left" if c in ("method", "role", "status") else "right")
    for _, row in df.iterrows():
        table.add_row(*(_fmt(row[c]) for c in columns))
    (console or make_console()).print(table)


def make_console() -> Console:
    """A console wide enough for the metrics table, also when output goes to a file or pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=180)

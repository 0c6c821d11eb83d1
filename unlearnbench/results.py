"""The tidy per-job results: metrics.csv, resolved config, forget indices, `done` marker;
and the console table. Torch-free."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, UserError
from .schema import COLUMNS, DONE, SHOWN


def tidy(rows: list[dict[str, Any]], columns: list[str] = COLUMNS) -> pd.DataFrame:
    """Rows in the schema's column order; method-specific extras follow, sorted."""
    df = pd.DataFrame(rows)
    extras = sorted(c for c in df.columns if c not in columns)
    for c in columns:
        if c not in df.columns:
            df[c] = np.nan
    return df[columns + extras]


# Every file a job may write into its folder (nothing else is ever written there); the
# privacy protocol's job writes privacy.csv, per_example.csv and epsilon_hist.png instead of
# metrics.csv.
OUTPUTS = ("metrics.csv", "forget_indices.npy", "config.yaml", "timings.json",
           "traceback.txt", "checkpoints.csv", "mi_inversions.png", "class_influence.csv",
           "privacy.csv", "per_example.csv", "epsilon_hist.png", "inpainting_grid.png", DONE)


def foreign_outputs(out_dir: Path) -> list[str]:
    """Files in ``out_dir`` a job would overwrite that are not a finished job's own."""
    if not out_dir.is_dir() or (out_dir / DONE).is_file():
        return []
    return [name for name in OUTPUTS if (out_dir / name).exists()]


def finished_config_hash(out_dir: Path) -> str | None:
    """The config hash of the finished job in ``out_dir``; None when there is none or its
    metrics.csv cannot be read (a broken job, which a rerun of it may replace)."""
    if not (out_dir / DONE).is_file():
        return None
    try:
        with open(out_dir / "metrics.csv", newline="", encoding="utf-8") as f:
            row = next(csv.DictReader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    value = (row or {}).get("config_hash")
    return value or None


def check_not_another_job(out_dir: Path, config_hash: str, key: str) -> None:
    """A job never overwrites the finished job of another config (a rerun of the same config
    may replace its own)."""
    other = finished_config_hash(out_dir)
    if other is not None and other != config_hash:
        raise ConfigError(key, str(out_dir), f"a folder of its own (it holds the finished job "
                          f"{other[:10]} of another config, which this job would overwrite)")


def save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append .npy to a name
        np.save(f, array, allow_pickle=False)


Writer = Any  # (path) -> None: writes one file


def write_job(out_dir: Path, df: pd.DataFrame, forget: np.ndarray | None,
              texts: dict[str, str], files: dict[str, bytes] | None = None) -> None:
    """Write a job's files: metrics.csv, the forget indices (None for a job that crashed
    before its forget set existed), ``texts`` and ``files`` (the task's other outputs: a
    learning curve, figures; each one of ``OUTPUTS``); see :func:`write_files`. Never over
    the finished job of another config."""
    unknown = sorted(set(files or {}) - set(OUTPUTS))
    if unknown:
        raise ValueError(f"not a job output: {', '.join(unknown)} (results.OUTPUTS)")
    if "config_hash" in df.columns and len(df):
        check_not_another_job(out_dir, str(df["config_hash"].iloc[0]), "job folder")
    writers: dict[str, Writer] = {"metrics.csv": lambda p: df.to_csv(p, index=False)}
    if forget is not None:
        writers["forget_indices.npy"] = lambda p: save_npy(p, forget.astype(np.int64))
    writers.update(text_writers(texts))
    writers.update({name: (lambda p, d=data: p.write_bytes(d))
                    for name, data in (files or {}).items()})
    write_files(out_dir, writers)


def text_writers(texts: dict[str, str]) -> dict[str, Writer]:
    return {name: (lambda p, t=text: p.write_text(t)) for name, text in texts.items()}


def write_files(out_dir: Path, files: dict[str, Writer]) -> None:
    """Write a job's files in order, then the `done` marker, so a crash leaves no `done` job.
    Each file is written to a temporary name and renamed; on any error every file this call
    wrote is removed again and the error is one line naming the folder."""
    written: list[Path] = []

    def put(name: str, write: Writer) -> None:
        path = out_dir / name
        tmp = out_dir / f".{name}.tmp"
        written.append(tmp)
        write(tmp)
        os.replace(tmp, path)
        written.append(path)

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / DONE).unlink(missing_ok=True)
        for name, write in files.items():
            put(name, write)
        put(DONE, lambda p: p.write_text("ok\n"))
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise UserError(f"results_dir: cannot write the job's files in {out_dir} "
                        f"({exc.strerror or exc}); nothing was kept") from None


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

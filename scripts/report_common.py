"""Shared by the application reports (backdoor_report.py, transfer_report.py): read the
finished jobs of sweep folders, aggregate mean ± std over seeds, write the table files."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from unlearnbench.report.tables import collect


def read_jobs(paths: list[Path]) -> pd.DataFrame:
    """Every row of every finished job (with a `done` marker) under ``paths``."""
    frames = [collect(p)[0] for p in paths]
    frames = [f for f in frames if not f.empty]
    if not frames:
        raise SystemExit(f"no finished job under {', '.join(map(str, paths))}")
    return pd.concat(frames, ignore_index=True)


def by_model(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per evaluated model: the original and the retrain once per ``keys`` group (every
    job of a group shares them), each method's unlearned model (`retrain`'s is the retrain);
    the column ``model_name`` says which."""
    refs = df[df.role.isin(["original", "retrain"])].drop_duplicates(keys + ["role"]).assign(
        model_name=lambda d: d.role)
    unlearned = df[(df.role == "unlearned") & (df.method != "retrain")].assign(
        model_name=lambda d: d.method)
    return pd.concat([refs, unlearned], ignore_index=True)


def mean_std(rows: pd.DataFrame, keys: list[str], metrics: list[str],
             order: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of ``metrics`` per ``keys`` (the last key is the model name,
    sorted by ``order``), with the seed count."""
    agg = rows.groupby(keys)[metrics].agg(["mean", "std"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    agg["seeds"] = rows.groupby(keys).seed.nunique()
    agg = agg.reset_index()
    agg["_order"] = agg[keys[-1]].map({m: i for i, m in enumerate(order)}).fillna(len(order))
    return agg.sort_values([*keys[:-1], "_order", keys[-1]]).drop(
        columns="_order").reset_index(drop=True)


def cells(agg: pd.DataFrame, metric: str, signed: bool = False) -> list[str]:
    """`mean ± std` strings of one metric (``signed``: with an explicit + for changes)."""
    form = "{:+.2f} ± {:.2f}" if signed else "{:.2f} ± {:.2f}"
    return [form.format(a, b) for a, b in zip(agg[f"{metric}_mean"],
                                                agg[f"{metric}_std"].fillna(0), strict=True)]


def main(doc: str, build: Callable[[pd.DataFrame, Path], pd.DataFrame],
         markdown: Callable[[pd.DataFrame], str]) -> None:
    """`script PATHS... --out DIR`: ``build`` aggregates the jobs' rows (and may draw into
    DIR); the table goes to DIR/table.csv and DIR/table.md and is printed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    agg = build(read_jobs(args.paths), args.out)
    agg.to_csv(args.out / "table.csv", index=False)
    text = markdown(agg)
    (args.out / "table.md").write_text(text + "\n")
    print(text)

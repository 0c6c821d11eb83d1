"""Sparsity report: mean ± std table, five-axis radar charts and metric-vs-sparsity plots.

    python scripts/sparsity_report.py results/sweeps/<dense> results/sweeps/<omp> \
        --out results/sparsity

Reads every finished job's metrics.csv under the given sweep folders (or summary.csv files)
and writes into ``--out``:

- ``table.md`` / ``table.csv``: mean ± std over seeds of UA, MIA, RA, TA, RTE_s, avg_gap per
  scenario, sparsity, rate and method (the retrain reference included);
- ``radar_<scenario>.png``: the paper's Figure-1 chart, one panel per method: UA, MIA, RA, TA
  and RTE, dense vs sparse, each axis normalised by the best value across the panels (RTE: the
  fastest over this one, so larger is better everywhere);
- ``vs_rate_<scenario>.png``: each metric against the sparsity rate (0 = dense), one line per
  method, when more than one rate is present.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

METRICS = ["UA", "MIA", "RA", "TA", "RTE_s", "avg_gap"]
RADAR = ["UA", "MIA", "RA", "TA", "RTE_s"]
KEYS = ["dataset", "model", "scenario", "sparsity", "sparsity_rate", "method"]
ORDER = ["retrain", "ft", "ga", "rl", "iu", "ff", "l1_sparse"]


def load(paths: list[Path]) -> pd.DataFrame:
    """Unlearned rows of every finished job, plus one retrain row per job."""
    frames = []
    for path in paths:
        csvs = [path] if path.is_file() else [c for c in sorted(path.rglob("metrics.csv"))
                                              if (c.parent / "done").exists()]
        frames += [pd.read_csv(c) for c in csvs]
    df = pd.concat(frames, ignore_index=True)
    for col, default in (("sparsity", "none"), ("sparsity_rate", 0.0)):
        if col not in df.columns:
            df[col] = default
    if "role" not in df.columns:  # a summary.csv holds unlearned rows only
        return df
    retrain = df[df.role == "retrain"].drop_duplicates(KEYS[:-1] + ["seed"]).assign(
        method="retrain")
    rows = df[(df.role == "unlearned") & (df.method != "retrain")]
    return pd.concat([retrain, rows], ignore_index=True)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    agg = df.groupby(KEYS)[METRICS].agg(["mean", "std"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    agg["seeds"] = df.groupby(KEYS).seed.nunique()
    agg = agg.reset_index()
    agg["_order"] = agg.method.map({m: i for i, m in enumerate(ORDER)}).fillna(len(ORDER))
    return agg.sort_values(["scenario", "sparsity_rate", "_order", "method"]).drop(
        columns="_order").reset_index(drop=True)


def markdown(agg: pd.DataFrame) -> str:
    out = agg[KEYS + ["seeds"]].copy()
    for m in METRICS:
        out[m] = [f"{a:.2f} ± {b:.2f}" for a, b in zip(agg[f"{m}_mean"],
                                                        agg[f"{m}_std"].fillna(0), strict=True)]
    return out.to_markdown(index=False)


def radar(agg: pd.DataFrame, scenario: str, path: Path) -> None:
    rows = agg[agg.scenario == scenario]
    methods = [m for m in ORDER if m in set(rows.method)] + sorted(set(rows.method) - set(ORDER))
    variants = sorted(set(zip(rows.sparsity, rows.sparsity_rate, strict=True)),
                      key=lambda v: v[1])
    scores = {}
    for _, r in rows.iterrows():
        scores[(r.method, r.sparsity, r.sparsity_rate)] = [r[f"{m}_mean"] for m in RADAR]
    values = np.array(list(scores.values()), dtype=float)
    best = np.nanmax(values, axis=0)
    fastest = np.nanmin(values[:, RADAR.index("RTE_s")])
    angles = np.linspace(0, 2 * np.pi, len(RADAR), endpoint=False).tolist()
    cols = min(4, len(methods))
    fig, axes = plt.subplots(int(np.ceil(len(methods) / cols)), cols,
                             subplot_kw={"polar": True}, figsize=(3.6 * cols, 3.6 * np.ceil(
                                 len(methods) / cols)), squeeze=False)
    for ax in axes.flat[len(methods):]:
        ax.remove()
    for ax, method in zip(axes.flat, methods, strict=False):
        for sparsity, rate in variants:
            v = scores.get((method, sparsity, rate))
            if v is None:
                continue
            norm = [x / b if b else 0.0 for x, b in zip(v, best, strict=True)]
            norm[RADAR.index("RTE_s")] = fastest / v[RADAR.index("RTE_s")]
            label = "dense" if sparsity == "none" else f"{sparsity} {rate:.0%}"
            ax.plot(angles + angles[:1], norm + norm[:1], label=label)
            ax.fill(angles + angles[:1], norm + norm[:1], alpha=0.15)
        ax.set_xticks(angles, ["UA", "MIA", "RA", "TA", "RTE"])
        ax.set_ylim(0, 1.05)
        ax.set_yticklabels([])
        empty = all(np.isnan(scores.get((method, *v), [np.nan])[0]) for v in variants)
        ax.set_title(f"{method} (no successful run)" if empty else method)
    axes.flat[0].legend(loc="lower left", bbox_to_anchor=(-0.35, -0.35), fontsize=8)
    fig.suptitle(f"{scenario}: normalised to the best across methods (larger is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def versus_rate(agg: pd.DataFrame, scenario: str, path: Path) -> bool:
    rows = agg[agg.scenario == scenario]
    if rows.sparsity_rate.nunique() < 2:
        return False
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.6))
    for ax, metric in zip(axes, METRICS, strict=True):
        for method, part in rows.groupby("method"):
            part = part.sort_values("sparsity_rate")
            ax.errorbar(part.sparsity_rate, part[f"{metric}_mean"],
                        yerr=part[f"{metric}_std"].fillna(0), marker="o", label=method,
                        capsize=2)
        ax.set_xlabel("sparsity rate")
        ax.set_title(metric)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{scenario}: metrics against sparsity (0 = dense)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="sweep folders or CSV files")
    parser.add_argument("--out", type=Path, default=Path("results/sparsity"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(load(args.inputs))
    agg.to_csv(args.out / "table.csv", index=False)
    (args.out / "table.md").write_text(markdown(agg) + "\n")
    written = ["table.md", "table.csv"]
    for scenario in sorted(agg.scenario.unique()):
        radar(agg, scenario, args.out / f"radar_{scenario}.png")
        written.append(f"radar_{scenario}.png")
        if versus_rate(agg, scenario, args.out / f"vs_rate_{scenario}.png"):
            written.append(f"vs_rate_{scenario}.png")
    print(f"wrote {', '.join(written)} to {args.out}")


if __name__ == "__main__":
    main()

"""Trojan-cleansing report: ASR and clean TA against the sparsity rate (the paper's figure).

    python scripts/backdoor_report.py results/sweeps/backdoor results/sweeps/backdoor_sparsity \
        --out results/backdoor

Reads every finished job's metrics.csv under the given folders (scenario=backdoor jobs) and
writes into ``--out``:

- ``table.csv`` / ``table.md``: mean ± std over seeds per dataset, architecture, sparsity rate
  (0 = dense) and model:
  ``original`` (the poisoned model), ``retrain`` (trained on the clean D_r) and every method's
  unlearned model; ASR, ASR_all, TA, UA, RA, MIA, avg_gap, RTE_s;
- ``asr_vs_sparsity_<dataset>_<model>.png``: ASR (left) and clean TA (right) against the
  sparsity rate, one line per model, error bars = std over seeds.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from report_common import by_model, cells, main, mean_std  # noqa: E402

METRICS = ["ASR", "ASR_all", "TA", "UA", "RA", "MIA", "avg_gap", "RTE_s"]
ORDER = ["original", "retrain", "ft", "ga", "rl", "iu", "ff", "l1_sparse"]
SETTING = ["dataset", "model"]
STYLE = {"original": {"color": "black", "ls": "--", "marker": "s"},
         "retrain": {"color": "gray", "ls": ":", "marker": "D"}}


def build(df: pd.DataFrame, out: Path) -> pd.DataFrame:
    df = df[df.scenario == "backdoor"].copy()
    df["sparsity_rate"] = df["sparsity_rate"].fillna(0.0) if "sparsity_rate" in df else 0.0
    rows = by_model(df, [*SETTING, "sparsity_rate", "seed"])
    agg = mean_std(rows, [*SETTING, "sparsity_rate", "model_name"],
                   [m for m in METRICS if m in rows.columns], ORDER)
    for (dataset, model), part in agg.groupby(SETTING):
        plot(part, f"{dataset}, {model}", out / f"asr_vs_sparsity_{dataset}_{model}.png")
    return agg


def markdown(agg: pd.DataFrame) -> str:
    out = agg[[*SETTING, "sparsity_rate", "model_name", "seeds"]].rename(
        columns={"model_name": "unlearned by"}).copy()
    for m in METRICS:
        if f"{m}_mean" in agg.columns:
            out[m] = cells(agg, m)
    return out.to_markdown(index=False)


def plot(agg: pd.DataFrame, title: str, path: Path) -> None:
    rates = sorted(agg.sparsity_rate.unique())
    position = {r: i for i, r in enumerate(rates)}
    names = [m for m in ORDER if m in set(agg.model_name)] + sorted(
        set(agg.model_name) - set(ORDER))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, metric, label in ((axes[0], "ASR", "attack success rate ASR (%)"),
                              (axes[1], "TA", "clean test accuracy TA (%)")):
        for name in names:
            rows = agg[agg.model_name == name].sort_values("sparsity_rate")
            ax.errorbar([position[r] for r in rows.sparsity_rate], rows[f"{metric}_mean"],
                        yerr=rows[f"{metric}_std"].fillna(0), label=name, capsize=3,
                        linewidth=1.4, **STYLE.get(name, {"marker": "o"}))
        ax.set_xticks(range(len(rates)))
        ax.set_xticklabels(["dense" if r == 0 else f"{r:.0%}" for r in rates])
        ax.set_xlabel("sparsity (OMP)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, ncol=2)
    fig.suptitle(f"Trojan cleansing ({title}): ASR and clean accuracy after unlearning the "
                 "poisoned samples")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main(__doc__, build, markdown)

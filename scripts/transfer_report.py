"""Transfer report: target accuracy and cost of the original, the retrain and each method.

    python scripts/transfer_report.py results/transfer/sweeps/<time> --out results/transfer

Reads every finished `unlearnbench-transfer` job's metrics.csv under the given folders and
writes ``table.csv`` / ``table.md`` into ``--out``: per source model (``original``, ``retrain``,
each method's unlearned model) mean ± std over seeds of the linear-probe and fine-tune target
accuracy, their change against the original of the same seed (paired: ``d_probe``,
``d_finetune``), the source-side cost (``source_cost_s``: 0 for the original, the retrain's
training time, the method's unlearning time), the transfer times and the source metrics TA
(kept classes) and FTA (dropped classes).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from report_common import by_model, cells, main, mean_std

ORDER = ["original", "retrain", "ft", "ga", "rl", "iu", "ff", "l1_sparse"]
SHOWN = ["probe_TA", "d_probe", "finetune_TA", "d_finetune", "source_cost_s", "probe_s",
         "finetune_s", "TA", "FTA"]
GROUP = ["dataset", "target", "model", "dropped_classes"]


def build(df: pd.DataFrame, out: Path) -> pd.DataFrame:
    df = df[df.probe_TA.notna()].copy()
    rows = by_model(df, [*GROUP, "seed"])
    rows["source_cost_s"] = rows.RTE_s.where(rows.model_name != "original", 0.0)
    original = rows[rows.model_name == "original"][[*GROUP, "seed", "probe_TA", "finetune_TA"]]
    paired = rows.merge(original, on=[*GROUP, "seed"], how="left", suffixes=("", "_original"))
    rows["d_probe"] = (paired.probe_TA - paired.probe_TA_original).to_numpy()
    rows["d_finetune"] = (paired.finetune_TA - paired.finetune_TA_original).to_numpy()
    return mean_std(rows, [*GROUP, "model_name"], SHOWN, ORDER)


def markdown(agg: pd.DataFrame) -> str:
    out = agg[["dataset", "target", "dropped_classes", "model_name", "seeds"]].rename(
        columns={"dataset": "source", "model_name": "source model"}).copy()
    for m in SHOWN:
        out[m] = cells(agg, m, signed=m.startswith("d_"))
    return out.to_markdown(index=False)


if __name__ == "__main__":
    main(__doc__, build, markdown)

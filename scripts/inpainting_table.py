"""The paper's table shape from finished task=inpainting jobs: original, retrain and each method,
retain and forget FD / IS / cos, the forget recognition rate and the summary gap, mean ± std
over seeds; the phase times from the jobs' timings.json; and the i2i_encoder job's grid.

    unlearnbench -m +experiment=inpainting \
        'method=retrain,i2i_encoder,max_loss,noisy_label,retain_label,random_encoder' \
        hydra.sweep.dir=SWEEP
    python scripts/inpainting_table.py SWEEP [SWEEP ...] --out results/inpainting
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

COLUMNS = ["retain_FD", "retain_IS", "retain_cos", "forget_FD", "forget_IS", "forget_cos",
           "forget_recognised", "summary", "RTE_s"]
PHASES = ["data_s", "original_s", "retrain_s", "judge_s", "method_s", "metrics_s"]


def load(dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, times = [], []
    for root in dirs:
        for csv in sorted(root.rglob("metrics.csv")):
            if not (csv.parent / "done").exists():
                continue
            df = pd.read_csv(csv)
            df["job"] = str(csv.parent)
            rows.append(df)
            timing = json.loads((csv.parent / "timings.json").read_text())
            times.append({"job": str(csv.parent), "method": df.method.iat[0],
                          "seed": int(df.seed.iat[0]), **timing})
    return pd.concat(rows, ignore_index=True), pd.DataFrame(times)


def cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "—"
    if len(values) == 1:
        return f"{values.iat[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per model: the original and the retrain once per seed, then the methods'
    unlearned rows."""
    picked = {
        "original": rows[rows.role == "original"].drop_duplicates("seed"),
        "retrain": rows[rows.role == "retrain"].drop_duplicates("seed"),
    }
    unlearned = rows[(rows.role == "unlearned") & (rows.method != "retrain")]
    for method, group in unlearned.groupby("method", sort=True):
        picked[method] = group
    out = []
    for name, group in picked.items():
        out.append({"model": name, "seeds": group.seed.nunique(),
                    **{c: cell(group[c]) for c in COLUMNS if c in group}})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("results/inpainting"))
    args = parser.parse_args()
    rows, times = load(args.dirs)
    args.out.mkdir(parents=True, exist_ok=True)
    setting = rows.iloc[0]
    lines = [f"# Inpainting unlearning: {setting.dataset} / {setting.model} / "
             f"{setting.scenario}", "",
             table(rows).to_markdown(index=False), "",
             "Phase seconds per job (a cached phase costs its loading only):", "",
             times[["method", "seed", *[p for p in PHASES if p in times]]]
             .round(1).to_markdown(index=False), ""]
    (args.out / "table.md").write_text("\n".join(lines))
    grid = next((Path(j) / "inpainting_grid.png" for j in rows[rows.method == "i2i_encoder"].job),
                None)
    if grid is not None and grid.is_file():
        shutil.copyfile(grid, args.out / "grid_i2i_encoder.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

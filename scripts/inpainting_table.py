"""The paper's table shape from finished task=inpainting jobs, one table per generator: original,
retrain and each method (variants such as `retain_source=proxy` or `mode=fixed` on their own
rows), retain and forget FD / IS / cos, the forget recognition rate and the summary gap,
mean ± std over seeds; the phase times from the jobs' timings.json (mean per generator); and
each method's grid of the first seed.

    unlearnbench -m +experiment=inpainting model=mae seed=0 \
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
import yaml

COLUMNS = ["retain_FD", "retain_IS", "retain_cos", "forget_FD", "forget_IS", "forget_cos",
           "forget_recognised", "summary", "RTE_s"]
PHASES = ["original_s", "retrain_s", "judge_s", "method_s", "metrics_s"]
# method keys whose non-default value makes a row of its own (README "Image-to-image ...")
VARIANT_DEFAULTS = {"retain_source": "real", "mode": "reference", "noise": "gaussian"}


def variant(job: Path) -> str:
    """`i2i_encoder`, or `i2i_encoder (retain_source=proxy)` for a non-default variant."""
    method = yaml.safe_load((job / "config.yaml").read_text())["method"]
    name = method["_target_"].rsplit(".", 2)[-2]
    extra = [f"{k}={method[k]}" for k, default in VARIANT_DEFAULTS.items()
             if k in method and str(method[k]) != default]
    return f"{name} ({', '.join(extra)})" if extra else name


def load(dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, times = [], []
    for root in dirs:
        for csv in sorted(root.rglob("metrics.csv")):
            job = csv.parent
            if not (job / "done").exists():
                continue
            df = pd.read_csv(csv)
            label = "retrain" if df.method.iat[0] == "retrain" else variant(job)
            df["job"], df["label"] = str(job), label
            rows.append(df)
            timing = json.loads((job / "timings.json").read_text())
            times.append({"job": str(job), "generator": df.model.iat[0], "label": label,
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
    """One line per row kind: the original and the retrain once per seed, then the methods'
    unlearned rows, ranked by summary."""
    picked = {
        "original": rows[rows.role == "original"].drop_duplicates("seed"),
        "retrain": rows[rows.role == "retrain"].drop_duplicates("seed"),
    }
    unlearned = rows[(rows.role == "unlearned") & (rows.method != "retrain")]
    ranked = unlearned.groupby("label").summary.mean().sort_values().index
    for label in ranked:
        picked[label] = unlearned[unlearned.label == label]
    out = []
    for name, group in picked.items():
        out.append({"row": name, "seeds": group.seed.nunique(),
                    **{c: cell(group[c]) for c in COLUMNS if c in group}})
    return pd.DataFrame(out)


def phase_times(times: pd.DataFrame) -> pd.DataFrame:
    """Per generator: the references' training (their first job), the judge, and the method
    and metric phases (mean over the method jobs)."""
    out = []
    for generator, group in times.groupby("generator", sort=True):
        first = group[group.original_s > 1.0]  # the job that trained the references
        methods = group[group.label != "retrain"]
        out.append({"generator": generator, "seeds": group.seed.nunique(),
                    "original_s": first.original_s.mean(), "retrain_s": first.retrain_s.mean(),
                    "method_s (mean)": methods.method_s.mean(),
                    "metrics_s (mean)": methods.metrics_s.mean()})
    return pd.DataFrame(out).round(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("results/inpainting"))
    args = parser.parse_args()
    rows, times = load(args.dirs)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# Inpainting unlearning (Fashion-MNIST, task=inpainting)", "",
             "Mean ± std over seeds; rows after the retrain ranked by summary (lower is closer "
             "to the retrain). FD, IS and cos in the judge classifier's feature space; "
             "forget_recognised = share of forget outputs the judge calls a forget class.", ""]
    for generator, group in rows.groupby("model", sort=True):
        setting = group.iloc[0]
        lines += [f"## {setting.dataset} / {generator} / {setting.scenario}", "",
                  table(group).to_markdown(index=False), ""]
        first_seed = group.seed.min()
        for label in sorted(set(group[group.role == "unlearned"].label)):
            jobs = group[(group.label == label) & (group.seed == first_seed)].job
            grid = next((Path(j) / "inpainting_grid.png" for j in jobs), None)
            if grid is not None and grid.is_file():
                slug = label.replace(" (", "_").replace("=", "_").replace(", ", "_").rstrip(")")
                shutil.copyfile(grid, args.out / f"grid_{generator}_{slug}.png")
    lines += ["## Phase seconds (2 CPU cores, two jobs at a time)", "",
              phase_times(times).to_markdown(index=False), ""]
    (args.out / "table.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

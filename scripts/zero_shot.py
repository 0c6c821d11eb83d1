"""Evidence for the zero-shot family (issue 11): the zero-shot paper's table layout (original,
retrain, UNSIR / M-M, GKT, Bad Teacher, Amnesiac, FF; D_r and D_f accuracy, AIN, MI_success)
for one or two forgotten classes, several seeds, beside the paper's MNIST numbers.

    OMP_NUM_THREADS=1 python scripts/zero_shot.py --dataset mnist_5k --model allcnn \
        --set model.width=0.125                            # runs (resumable), then the table
    OMP_NUM_THREADS=1 python scripts/zero_shot.py --dataset fashion_mnist --model mlp
    python scripts/zero_shot.py --table-only               # the table from what is there

Every job runs through the runner into ``results/zero_shot/jobs/<dataset>/<job>/`` (its
metrics.csv, checkpoints.csv for GKT, mi_inversions.png, timings.json); a job whose `done`
marker exists is not run again. The models are cached in ``results/zero_shot/cache``. The
table goes to ``results/zero_shot/TABLE.md`` and ``table.csv``: mean ± std over seeds.
Timings are wall clock on the machine that ran them (say how loaded it was).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from rich.console import Console

from unlearnbench.runner import run
from unlearnbench.schema import DONE

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "zero_shot"
# label -> overrides; the paper's rows, plus UNSIR (full access) in both loader modes.
METHODS = {
    "M-M (unsir_zero_shot)": ["method=unsir_zero_shot"],
    "GKT": ["method=gkt", "method.pseudo_batches=300"],
    "Bad Teacher": ["method=bad_teacher"],
    "Amnesiac": ["method=amnesiac"],
    "FF": ["method=ff"],
    "UNSIR (reference loader)": ["method=unsir", "method.mode=reference"],
    "UNSIR (fixed loader)": ["method=unsir", "method.mode=fixed"],
}
FORGET = {"1 class": "[0]", "2 classes": "[0,1]"}
# The paper's MNIST numbers (Chundawat et al., IEEE TIFS 2023, Table: AllCNN, MNIST):
# accuracy on the retain / forget classes' test samples, and AIN.
PAPER = {
    ("1 class", "original"): (97.84, 99.61, None),
    ("1 class", "retrain"): (99.25, 0.0, None),
    ("1 class", "M-M (unsir_zero_shot)"): (10.57, 0.0, None),
    ("1 class", "GKT"): (97.12, 0.0, 0.65),
    ("2 classes", "GKT"): (96.87, 0.0, 0.30),
}
COLUMNS = {"TA": "D_r test acc", "FTA": "D_f test acc", "RA": "D_r train acc",
           "Df_train": "D_f train acc", "AIN": "AIN", "AIN_censored": "AIN censored",
           "MI_success": "MI_success", "ZRF": "ZRF", "RTE_s": "seconds"}


def jobs(dataset: str, model: str, extra: list[str], seeds: list[int]) -> list[tuple[str, list]]:
    out = []
    for forget_label, classes in FORGET.items():
        for seed in seeds:
            for label, overrides in METHODS.items():
                name = f"{forget_label.replace(' ', '')}_{label.split(' ')[0]}" \
                       f"{'_fixed' if 'fixed' in label else ''}_s{seed}"
                out.append((name, [f"dataset={dataset}", f"model={model}", *extra,
                                   "scenario=classwise",
                                   f"scenario.forget_classes={classes}", f"seed={seed}",
                                   *overrides]))
    return out


def run_all(dataset: str, model: str, extra: list[str], seeds: list[int]) -> None:
    folder = OUT / "jobs" / dataset
    console = Console(width=180)
    for name, overrides in jobs(dataset, model, extra, seeds):
        out = folder / name
        if (out / DONE).exists():
            continue
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[f"results_dir={OUT}",
                                               f"cache_dir={OUT / 'cache'}", "progress=false",
                                               "device=cpu", *overrides])
        console.print(f"[bold]{dataset} {name}")
        run(cfg, out, console)


def _label(method: str, cfg: dict) -> str:
    for label, overrides in METHODS.items():
        wanted = overrides[0].split("=")[1]
        mode = next((o.split("=")[1] for o in overrides if o.startswith("method.mode=")), None)
        if method == wanted and (mode is None or cfg.get("method", {}).get("mode") == mode):
            return label
    return method


def collect() -> pd.DataFrame:
    import yaml

    rows = []
    for csv in sorted((OUT / "jobs").rglob("metrics.csv")):
        if not (csv.parent / DONE).exists():
            continue
        df = pd.read_csv(csv)
        cfg = yaml.safe_load((csv.parent / "config.yaml").read_text())
        timings = json.loads((csv.parent / "timings.json").read_text())
        forget = cfg["scenario"]["forget_classes"]
        for _, r in df.iterrows():
            label = r.role if r.role != "unlearned" else _label(r.method, cfg)
            rows.append({**r.to_dict(), "label": label, "model_cfg": cfg["model"]["name"],
                         "forget": "1 class" if len(forget) == 1 else f"{len(forget)} classes",
                         "Df_train": 100.0 - r.UA,
                         "anamnesis_s": timings.get("metric_anamnesis_s", math.nan),
                         "inversion_s": timings.get("metric_inversion_s", math.nan),
                         "job": csv.parent.name})
    return pd.DataFrame(rows)


def cell(values: pd.Series, digits: int = 2) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "—"
    if len(values) == 1:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def table(all_rows: pd.DataFrame) -> str:
    lines = []
    order = ["original", "retrain", *METHODS]
    for (dataset, model), part in all_rows.groupby(["dataset", "model_cfg"], sort=False):
        for forget in FORGET:
            rows = part[part.forget == forget]
            if rows.empty:
                continue
            # references appear in every job: one row per seed
            refs = rows[rows.role != "unlearned"].drop_duplicates(["role", "seed"])
            rows = pd.concat([refs, rows[rows.role == "unlearned"]])
            seeds = sorted(rows.seed.unique())
            lines += [f"## {dataset} · {model} · forget {forget} "
                      f"(classes {'0' if forget == '1 class' else '0, 1'}; seeds "
                      f"{', '.join(map(str, seeds))})", "",
                      "| method | seeds | " + " | ".join(COLUMNS.values())
                      + " | paper D_r / D_f / AIN (MNIST) |",
                      "|" + "---|" * (len(COLUMNS) + 3)]
            for label in order:
                group = rows[(rows.label == label) & (rows.status == "ok")]
                failed = int(((rows.label == label) & (rows.status != "ok")).sum())
                if group.empty and not failed:
                    continue
                paper = PAPER.get((forget, label))
                paper_cell = " / ".join("—" if v is None else f"{v:g}" for v in paper) \
                    if paper and dataset == "mnist_5k" else ""
                cells = [cell(group[c], 3 if c in ("AIN", "ZRF") else 2) for c in COLUMNS]
                n = f"{len(group)}" + (f" ({failed} failed)" if failed else "")
                lines.append(f"| {label} | {n} | " + " | ".join(cells) + f" | {paper_cell} |")
            lines.append("")
            ok = rows[(rows.role == "unlearned") & (rows.status == "ok")]
            cost = ok.groupby("label")[["anamnesis_s", "inversion_s"]].mean()
            if not cost.empty:
                lines += ["Metric cost per job (s, mean; the unlearned model, plus the "
                          "references' when not memoised): AIN "
                          f"{cost.anamnesis_s.mean():.1f}, MI_success "
                          f"{cost.inversion_s.mean():.1f}.", ""]
    return "\n".join(lines)


def gkt_curves(all_rows: pd.DataFrame) -> str:
    """D_f / D_r accuracy of GKT's student every 50 pseudo-batches, from checkpoints.csv."""
    lines = []
    for job in sorted(all_rows[all_rows.label == "GKT"].job.unique()):
        path = next((OUT / "jobs").rglob(f"{job}/checkpoints.csv"), None)
        if path is None:
            continue
        curve = pd.read_csv(path)
        dataset = path.parent.parent.name
        steps = ", ".join(f"{int(r.step)}: {r.FTA:.0f}/{r.TA:.0f} ({r.gate_pass_rate:.2f})"
                          for _, r in curve.iterrows())
        lines.append(f"- {dataset} {job}: {steps}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist_5k")
    parser.add_argument("--model", default="allcnn")
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides (model.width=…)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    if not args.table_only:
        run_all(args.dataset, args.model, args.set, args.seeds)
    rows = collect()
    if rows.empty:
        print("no finished job under", OUT / "jobs")
        return
    rows.to_csv(OUT / "table.csv", index=False)
    text = ("# Zero-shot family: evidence\n\nColumns: accuracy (%) on the retain / forget "
            "classes' test samples (the paper's D_r / D_f), on the training D_r / D_f, AIN "
            "(relearn steps ÷ the retrain's, median of 3 relearn seeds; `AIN censored` = share "
            "of seeds where a relearn hit its cap), MI_success (% of inversions of the "
            "forgotten classes the judge recognises), ZRF, and the unlearning step's seconds "
            "(the retrain row: its training time). Regenerate: see scripts/zero_shot.py.\n\n"
            + table(rows) + "\n## GKT learning curves\n\nPseudo-batch: forget-test / "
            "retain-test accuracy (gate pass rate), scored after the method from its "
            "checkpoints.\n\n" + gkt_curves(rows) + "\n")
    (OUT / "TABLE.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

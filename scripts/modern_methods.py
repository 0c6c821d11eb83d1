"""Evidence for the modern baselines and the tamper test: SalUn, SCRUB, NegGrad+, SSD and LF-SSD
beside FT, GA, RL, the retrain and the original, on digits and Fashion-MNIST (MLP), class-wise
and random, with the retain-only relearn attack (relearn_FA) for every model.

    OMP_NUM_THREADS=1 nice -n 5 python scripts/modern_methods.py run --dataset digits
    OMP_NUM_THREADS=1 nice -n 5 python scripts/modern_methods.py run --dataset fashion_mnist
    python scripts/modern_methods.py table

`run` is one resumable Hydra sweep per dataset (the CLI, plain method defaults) into
``results/sweeps/modern/<dataset>`` (job folders are not committed, like every sweep);
`table` reads the finished jobs (no torch) and writes
``results/modern/modern.md`` and ``modern.csv`` (ranked by avg_gap; cost; forget accuracy
before and after the attack) and the full leaderboard under ``results/modern/leaderboard``.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "modern"
SWEEPS = ROOT / "results" / "sweeps" / "modern"
METHODS = "ft,ga,rl,retrain,salun,scrub,neggrad_plus,ssd"
SEEDS = "0,1,2"


def sweep(dataset: str, seeds: str, extra: list[str]) -> None:
    """Every method, then LF-SSD (an ssd variant), x both scenarios x seeds; resumable. Paths
    are relative to the repository root, so the recorded commands can be rerun anywhere."""
    base = [sys.executable, "-m", "unlearnbench.cli", "-m", f"dataset={dataset}", "model=mlp",
            "scenario=classwise,random", f"seed={seeds}", "progress=false", "device=cpu",
            *extra]
    where = SWEEPS.relative_to(ROOT) / dataset
    for name, methods in (("methods", [f"method={METHODS}"]),
                          ("lfssd", ["method=ssd", "method.importance=label_free"])):
        subprocess.run([*base, *methods, f"hydra.sweep.dir={where / name}"], cwd=ROOT,
                       check=True)


def forget_accuracy(scenario: str, r: dict) -> tuple[float, float]:
    """Forget accuracy before the attack, comparable to relearn_FA: FTA class-wise, 100 − UA
    random (mean, std over seeds)."""
    if scenario == "classwise":
        return r["FTA"]
    mean, std = r["UA"]
    return 100.0 - mean, std


def _cell(mean: float, std: float, digits: int = 2) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def table() -> pd.DataFrame:
    from unlearnbench.report.leaderboard import build, build_tables, load

    dirs = sorted(p for p in SWEEPS.iterdir() if p.is_dir())
    build(dirs, OUT / "leaderboard", [str(d.relative_to(ROOT)) for d in dirs]
          + ["-o", "results/modern/leaderboard"])
    rows, lines = [], ["# Modern baselines and the retain-only relearn attack", "",
                       "Regenerate: `python scripts/modern_methods.py table` (README, "
                       "\"Modern baselines and the tamper test\").", ""]
    for t in build_tables(load(dirs)):
        ref = next(r for r in t.rows if r["kind"] == "reference")
        retrain_s = ref["RTE_s"][0]
        shown = []
        for r in t.rows:
            before = forget_accuracy(t.scenario, r)
            after = r["relearn_FA"]
            rte = r["RTE_s"][0] if r["kind"] != "original" else math.nan
            row = {"dataset": t.dataset, "scenario": t.scenario, "rank": r["rank"],
                   "method": r["label"], "seeds": r["n"], "avg_gap": r["avg_gap"][0],
                   "avg_gap_std": r["avg_gap"][1], "UA": r["UA"][0], "TA": r["TA"][0],
                   "MIA": r["MIA"][0], "RTE_s": rte, "cost_vs_retrain": rte / retrain_s,
                   "FA_before": before[0], "relearn_FA": after[0], "relearn_FA_std": after[1],
                   "attack_delta": after[0] - before[0],
                   "retrain_relearn_FA": ref["relearn_FA"][0],
                   "gap_relearn": r["gap_relearn"][0]}
            rows.append(row)
            shown.append({
                "rank": r["rank"], "method": r["label"], "seeds": r["n"],
                "avg_gap ↓": _cell(*r["avg_gap"]), "UA": _cell(*r["UA"]),
                "TA": _cell(*r["TA"]), "RTE (s)": _cell(rte, math.nan),
                "cost vs retrain": _cell(rte / retrain_s, math.nan, 3),
                "FA before": _cell(*before), "relearn_FA": _cell(*after),
                "gap_relearn": _cell(*r["gap_relearn"])})
        fa = "FTA (forgotten class, test)" if t.scenario == "classwise" else "100 − UA (D_f)"
        lines += [f"## {t.title}", "", f"FA = {fa}; retrain's relearn_FA "
                  f"{_cell(*ref['relearn_FA'])}.", "",
                  pd.DataFrame(shown).to_markdown(index=False, disable_numparse=True), ""]
    df = pd.DataFrame(rows)
    df.to_csv(OUT / "modern.csv", index=False)
    (OUT / "modern.md").write_text("\n".join(lines))
    print(f"{len(df)} rows -> {OUT / 'modern.md'}, modern.csv, leaderboard/")
    return df


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) one dataset's sweep")
    run.add_argument("--dataset", required=True, choices=["digits", "fashion_mnist"])
    run.add_argument("--seeds", default=SEEDS, help="comma-separated seeds (default 0,1,2)")
    run.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job")
    sub.add_parser("table", help="tabulate the finished jobs")
    args = parser.parse_args()
    if args.command == "run":
        sweep(args.dataset, args.seeds, args.overrides)
    else:
        table()
    return 0


if __name__ == "__main__":
    sys.exit(main())

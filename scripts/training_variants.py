"""Evidence for the training variants: Amnesiac and SISA next to the core methods.

    OMP_NUM_THREADS=1 python scripts/training_variants.py --dataset fashion_mnist
    OMP_NUM_THREADS=1 python scripts/training_variants.py --dataset digits

Runs every method x scenario through the runner (shared model cache) and writes
``results/training_variants/<dataset>.csv`` and ``.md``; ``--amnesiac-sweep`` adds the share of
removed batches against K. Timings are wall clock on this machine, single-threaded. FT, GA and
RL run with the committed tuned defaults where their setting was tuned (random 10 %,
class-wise), plain defaults otherwise (the samples scenarios); the Amnesiac rows are pinned.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from rich.console import Console

from unlearnbench.runner import run

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "retrain": ["method=retrain"],
    "ft": ["method=ft"],
    "ga": ["method=ga"],
    "rl": ["method=rl"],
    # pinned, so the tuned Amnesiac files (random 10 %, class-wise) do not turn the two rows
    # into one: subtraction only, and subtraction + one repair epoch at the plain lr
    "amnesiac": ["method=amnesiac", "method.repair_epochs=0"],
    "amnesiac+repair": ["method=amnesiac", "method.repair_epochs=1", "method.repair_lr=0.01"],
    "sisa S=5": ["method=sisa", "method.runner.training.shards=5"],
    "sisa S=10": ["method=sisa", "method.runner.training.shards=10"],
}
SCENARIOS = {
    "samples K=10": ["scenario=samples", "scenario.count=10"],
    "samples K=100": ["scenario=samples", "scenario.count=100"],
    "random 10%": ["scenario=random", "scenario.fraction=0.1"],
    "classwise": ["scenario=classwise"],
    # SISA's best case: the requests fall in one shard (of the method's own S shards).
    "samples K=10 in 1 shard": ["scenario=samples", "scenario.count=10", "scenario.in_shards=1"],
}
ONLY = {"samples K=10 in 1 shard": ("retrain", "sisa S=5", "sisa S=10")}
EXTRAS = ["batches_removed_share", "shards_retrained", "slices_retrained", "speedup_vs_ensemble",
          "work_speedup", "work_speedup_vs_ensemble", "ensemble_original_TA",
          "constituent_mean_TA"]
SHOWN = ["scenario", "method", "status", "UA", "RA", "TA", "FTA", "MIA", "RTE_s", "speedup",
         "avg_gap", *EXTRAS]


def job(dataset: str, overrides: list[str], cache: Path, console: Console) -> pd.DataFrame:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"dataset={dataset}", "model=mlp", "device=cpu",
                                           "progress=false", f"cache_dir={cache}", *overrides])
    return run(cfg, None, console)


def matrix(dataset: str, cache: Path, console: Console) -> pd.DataFrame:
    rows = []
    for scen, s_over in SCENARIOS.items():
        for name, m_over in METHODS.items():
            if name not in ONLY.get(scen, METHODS):
                continue
            start = time.perf_counter()
            df = job(dataset, [*s_over, *m_over], cache, console).set_index("role")
            console.print(f"[bold]{scen} / {name}: {time.perf_counter() - start:.0f}s")
            if name == "retrain":  # the plain original, once per scenario
                rows.append({**df.loc["original"].to_dict(), "scenario": scen,
                             "method": "original"})
            rows.append({**df.loc["unlearned"].to_dict(), "scenario": scen, "method": name})
    return pd.DataFrame(rows)


def amnesiac_sweep(dataset: str, cache: Path, console: Console,
                   counts: list[int]) -> pd.DataFrame:
    """Retain and test accuracy against the share of removed batches (K forgotten samples)."""
    rows = []
    for k in counts:
        for repair in (0, 1):
            df = job(dataset, ["scenario=samples", f"scenario.count={k}", "method=amnesiac",
                               f"method.repair_epochs={repair}"], cache, console).set_index("role")
            u, r = df.loc["unlearned"], df.loc["retrain"]
            rows.append({"K": k, "repair_epochs": repair,
                         "batches_removed_share": u["batches_removed_share"],
                         "UA": u["UA"], "RA": u["RA"], "TA": u["TA"], "retrain_TA": r["TA"],
                         "original_TA": df.loc["original", "TA"], "avg_gap": u["avg_gap"]})
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame) -> str:
    out = []
    for scen, part in df.groupby("scenario", sort=False):
        cols = [c for c in SHOWN[1:] if c in part and part[c].notna().any()]
        cols += ["reason"] if "reason" in part and part["reason"].notna().any() else []
        out.append(f"### {scen}\n\n{part[cols].to_markdown(index=False, floatfmt='.2f')}\n")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--cache", default=None, help="model cache (default: a fresh one)")
    parser.add_argument("--out", default=str(ROOT / "results" / "training_variants"))
    parser.add_argument("--amnesiac-sweep", default="", help="comma-separated K values")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache or f"/tmp/training-variants-cache-{args.dataset}")
    console = Console(quiet=True)
    if args.amnesiac_sweep:
        counts = [int(k) for k in args.amnesiac_sweep.split(",")]
        sweep = amnesiac_sweep(args.dataset, cache, console, counts)
        sweep.to_csv(out / f"{args.dataset}_amnesiac_share.csv", index=False)
        text = sweep.to_markdown(index=False, floatfmt=[".0f", ".0f", ".4f", *[".2f"] * 6])
        (out / f"{args.dataset}_amnesiac_share.md").write_text(text + "\n")
        print(text)
        return
    df = matrix(args.dataset, cache, Console())
    df.to_csv(out / f"{args.dataset}.csv", index=False)
    text = markdown(df)
    (out / f"{args.dataset}.md").write_text(
        f"# {args.dataset} / mlp, seed 0 (CPU, 1 thread)\n\n{text}")
    print(text)


if __name__ == "__main__":
    main()

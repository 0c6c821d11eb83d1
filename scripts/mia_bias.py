"""MIA-Efficacy three ways, side by side in one run: the old capped computation (each shadow
side an evenly spaced subsample of 3000, scikit-learn's SVC), today's (the full shadow sets,
the exact interior-point solver) and the uncapped reference (the full shadow sets,
scikit-learn's SVC, as `SVC_MIA`), with the seconds each took.

    OMP_NUM_THREADS=1 nice python scripts/mia_bias.py            # Fashion-MNIST MLP, seed 0

The uncapped reference takes minutes (one SVC fit on ~20,000 samples per feature and model).
Writes ``results/faithful/mia_bias.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from rich.console import Console

from unlearnbench.metrics.accuracy import test_mask
from unlearnbench.metrics.mia import softmax_feature, svc_mia_efficacy
from unlearnbench.runner import prepare
from unlearnbench.training import predict

ROOT = Path(__file__).resolve().parents[1]
OLD_CAP = 3000  # the former eval.metrics.mia.max_shadow


def evenly_spaced(values: np.ndarray, cap: int) -> np.ndarray:
    """The former cap: a fixed, evenly spaced subsample of at most ``cap`` rows."""
    return values[torch.linspace(0, len(values) - 1, min(len(values), cap)).round().long()]


def shadow_features(model: torch.nn.Module, job, feature: str) -> dict[str, np.ndarray]:
    """The metric's shadow members, non-members and targets for one feature."""
    data, split = job.env.data, job.env.split
    keep = test_mask(data, split)
    n = min(int(keep.sum()), len(split.retain))
    sides = {"members": (data.train_x[split.retain[:n]], data.train_y[split.retain[:n]]),
             "non_members": (data.test_x[keep], data.test_y[keep]),
             "targets": (data.train_x[split.forget], data.train_y[split.forget])}
    return {k: softmax_feature(predict(model, x), y, feature) for k, (x, y) in sides.items()}


def timed(fn, *args, **kwargs) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=ROOT / "results" / "cache")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "faithful")
    args = parser.parse_args()
    console = Console()
    rows = []
    for scenario in ("classwise", "random"):
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[
                f"dataset={args.dataset}", "model=mlp", "device=cpu", "progress=false",
                f"seed={args.seed}", f"scenario={scenario}", f"cache_dir={args.cache}"])
        job = prepare(cfg, console)
        for role in ("original", "retrain"):
            model = job.refs.get(role).model
            for feature in ("confidence", "entropy"):
                f = shadow_features(model, job, feature)
                capped, capped_s = timed(svc_mia_efficacy, evenly_spaced(f["members"], OLD_CAP),
                                         evenly_spaced(f["non_members"], OLD_CAP), f["targets"],
                                         solver="libsvm")
                new, new_s = timed(svc_mia_efficacy, f["members"], f["non_members"],
                                   f["targets"], solver="interior_point")
                full, full_s = timed(svc_mia_efficacy, f["members"], f["non_members"],
                                     f["targets"], solver="libsvm")
                rows.append({"scenario": scenario, "role": role, "feature": feature,
                             "shadow_n": len(f["members"]) + len(f["non_members"]),
                             "capped": capped, "interior_point": new, "uncapped": full,
                             "capped_bias": capped - full, "new_error": new - full,
                             "capped_s": capped_s, "interior_point_s": new_s,
                             "uncapped_s": full_s})
                console.print(rows[-1])
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "mia_bias.csv", index=False)
    text = df.to_markdown(index=False, floatfmt=".2f")
    total = df[["capped_s", "interior_point_s", "uncapped_s"]].sum()
    text += (f"\n\nTotal seconds: capped {total.capped_s:.1f}, interior_point "
             f"{total.interior_point_s:.1f}, uncapped {total.uncapped_s:.1f} "
             f"({args.dataset}, MLP, seed {args.seed}; one process, OMP_NUM_THREADS as set).\n")
    (args.out / "mia_bias.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

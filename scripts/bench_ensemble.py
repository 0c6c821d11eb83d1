"""Ensemble vs one-by-one training: N models of the default recipe trained by the vectorised
ensemble (unlearnbench.ensemble: the stacked kernels, and optionally the vmap path) and by N
calls of training.fit, side by side in one run.

    OMP_NUM_THREADS=1 nice -n 5 python scripts/bench_ensemble.py --datasets digits mnist_5k \\
        --models mlp --n-models 32 --vmap --out results/privacy/ensemble_bench.md
    python scripts/bench_ensemble.py --datasets digits --models cnn --epochs 3 --alone 4

``--alone K`` trains only K of the N models one by one and scales their time by N/K; the
table says so in its `one_by_one` column. ``--epochs E`` shortens the recipe (the ratio is a
per-step one). Each run also compares each member with the same model trained alone (largest
test-logit difference): rounding-level differences between the batched and the single kernels
usually stay below 1e-4, but a long run can amplify one past a ReLU flip in an occasional
member (an equally valid run of the same recipe, not a bug). The machine's load average is
recorded before and after each row: on a shared machine it moves the wall seconds, less the
ratio; the `*_cpu_s` columns are the process's CPU seconds for the same spans (with one thread,
what a dedicated core would take) and `speedup_cpu` their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import pandas as pd
import torch
from hydra import compose, initialize_config_dir

from unlearnbench.data import load_data
from unlearnbench.ensemble import predict_ensemble, train_ensemble
from unlearnbench.models import build_model
from unlearnbench.training import FitOptions, Recipe, fit, predict, warm_up

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
AGREE = 1e-3   # largest test-logit difference counted as "the same model"


def load_average() -> float:
    return os.getloadavg()[0]


def bench(dataset: str, model: str, n_models: int, alone: int, epochs: int | None,
          with_vmap: bool) -> dict:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"dataset={dataset}", f"model={model}"])
    data = load_data(cfg.dataset, cfg.data_root)
    recipe = Recipe.from_cfg(cfg.train)
    if epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=epochs)

    def build() -> torch.nn.Module:
        return build_model(cfg.model, data.input_shape, data.num_classes)

    load_before = load_average()
    seeds = list(range(n_models))
    cpu = time.process_time()
    ensemble, ensemble_s = train_ensemble(build, data.train_x, data.train_y, recipe, seeds)
    ensemble_cpu = time.process_time() - cpu
    logits = predict_ensemble(build, ensemble, data.test_x)
    vmap_s = (train_ensemble(build, data.train_x, data.train_y, recipe, seeds,
                             kernels="vmap")[1] if with_vmap else float("nan"))
    start, cpu, diffs = time.perf_counter(), time.process_time(), []
    for k in seeds[:alone]:
        torch.manual_seed(k)
        single = build()
        fit(single, data.train_x, data.train_y, recipe, seed=k,
            options=FitOptions(progress=False))
        diffs.append((predict(single, data.test_x) - logits[k]).abs().max().item())
    alone_s = (time.perf_counter() - start) * n_models / alone
    alone_cpu = (time.process_time() - cpu) * n_models / alone
    steps = recipe.epochs * -(-len(data.train_y) // recipe.batch_size)
    return {
        "dataset": dataset, "model": model, "N": n_models, "epochs": recipe.epochs,
        "steps": steps, "ensemble_s": ensemble_s, "vmap_s": vmap_s,
        "one_by_one_s": alone_s,
        "one_by_one": "measured" if alone == n_models else f"{alone} timed, x{n_models / alone:g}",
        "speedup": alone_s / ensemble_s,
        "speedup_vmap": alone_s / vmap_s,
        "ensemble_cpu_s": ensemble_cpu, "one_by_one_cpu_s": alone_cpu,
        "speedup_cpu": alone_cpu / ensemble_cpu,
        f"members_within_{AGREE:g}": f"{sum(d < AGREE for d in diffs)}/{len(diffs)}",
        "max_logit_diff": max(diffs),
        "test_acc_mean": 100.0 * (logits.argmax(-1) == data.test_y).float().mean().item(),
        "load_before": load_before, "load_after": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist_5k"])
    parser.add_argument("--models", nargs="+", default=["mlp"])
    parser.add_argument("--n-models", type=int, default=32)
    parser.add_argument("--alone", type=int, default=None,
                        help="models trained one by one (default: all N)")
    parser.add_argument("--epochs", type=int, default=None, help="shorten the recipe")
    parser.add_argument("--vmap", action="store_true",
                        help="also time the vmap path (the trainer before the stacked kernels)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warm_up(torch.device("cpu"))
    alone = min(args.alone or args.n_models, args.n_models)
    rows = [bench(d, m, args.n_models, alone, args.epochs, args.vmap)
            for m in args.models for d in args.datasets]
    df = pd.DataFrame(rows).dropna(axis=1, how="all")
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    threads = (f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={omp}, "
               f"{os.cpu_count()} CPUs; load = 1-minute load average before/after the row")
    text = df.to_markdown(index=False, floatfmt=".3g") + f"\n\n{threads}\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()

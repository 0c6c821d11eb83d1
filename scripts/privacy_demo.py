"""Per-example privacy scores on one forget set, from vectorised ensembles: N originals (all
of D) and N retrains (D_r) trained at once, the originals unlearned by fine-tuning on D_r
(FT, also vectorised), then the challenge's F, U-LiRA and KLoM for original-vs-retrain,
FT-vs-retrain and the retrain-vs-retrain ceiling.

    OMP_NUM_THREADS=1 python scripts/privacy_demo.py --dataset digits --n-models 32 \\
        --out results/privacy/demo_digits.md

The ceiling compares two halves of the retrain ensemble (N/2 models a side), so the table
also scores each method with N/2 models against the same second half ("N/2" rows): those are
the rows to compare with the ceiling. KLoM's held-out split is the test set.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir

from unlearnbench.data import load_data
from unlearnbench.ensemble import Ensemble, predict_ensemble, train_ensemble
from unlearnbench.metrics.per_example import (
    accuracy,
    final_score,
    forget_score_F,
    klom,
    logit_scaled_confidence,
    margins,
    ulira_accuracy,
)
from unlearnbench.models import build_model
from unlearnbench.scenarios import make_split
from unlearnbench.training import Recipe, warm_up

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
SPLITS = ("forget", "retain", "test")


@dataclass
class Outputs:
    """Per-model outputs of one ensemble on each split, numpy [models, examples(, classes)]."""

    logits: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    def __getitem__(self, members: slice) -> Outputs:
        return Outputs({s: v[members] for s, v in self.logits.items()}, self.labels)

    def conf(self, split: str) -> np.ndarray:
        return logit_scaled_confidence(self.logits[split], self.labels[split])

    def margins(self, split: str) -> np.ndarray:
        return margins(self.logits[split], self.labels[split])

    def acc(self, split: str) -> np.ndarray:
        return accuracy(self.logits[split], self.labels[split])


def compare(name: str, unlearned: Outputs, retrain: Outputs) -> dict:
    """Every score of one ensemble against the retrain ensemble, with the seconds each took."""
    row: dict = {"comparison": name, "models": f"{len(unlearned.logits['forget'])} vs "
                                               f"{len(retrain.logits['forget'])}"}
    start = time.perf_counter()
    forget = forget_score_F(unlearned.conf("forget"), retrain.conf("forget"))
    row["F_s"] = time.perf_counter() - start
    row["F"] = forget.value
    row["final"] = final_score(forget.value, unlearned.acc("retain"), retrain.acc("retain"),
                               unlearned.acc("test"), retrain.acc("test"))
    row["median_eps"] = float(np.median(forget.per_example))
    row["U-LiRA"] = ulira_accuracy(unlearned.conf("forget"), retrain.conf("forget")).value
    for split in SPLITS:
        per_example = klom(unlearned.margins(split), retrain.margins(split)).per_example
        row[f"KLoM_{split}"] = float(np.nanmean(per_example))
        row[f"KLoM_{split}_p95"] = float(np.nanquantile(per_example, 0.95))
    for split, column in (("forget", "FA"), ("retain", "RA"), ("test", "TA")):
        row[column] = float(unlearned.acc(split).mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--n-models", type=int, default=32)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--ft", nargs="*", default=[], metavar="EPOCHS:LR",
                        help="more FT settings beside conf/method/ft.yaml's, e.g. 10:0.05")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up(torch.device("cpu"))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"dataset={args.dataset}", f"model={args.model}",
                                           "scenario=random", f"scenario.fraction={args.fraction}",
                                           "method=ft"])
    data = load_data(cfg.dataset, cfg.data_root)
    split = make_split(cfg.scenario, data.train_y, data.num_classes, int(cfg.seed))
    recipe = Recipe.from_cfg(cfg.train)
    seeds = list(range(args.n_models))
    timings: dict[str, float] = {}

    def build() -> torch.nn.Module:
        return build_model(cfg.model, data.input_shape, data.num_classes)

    def outputs(ensemble: Ensemble) -> Outputs:
        rows = {"forget": split.forget, "retain": split.retain}
        xs = {**{s: data.train_x[i] for s, i in rows.items()}, "test": data.test_x}
        ys = {**{s: data.train_y[i] for s, i in rows.items()}, "test": data.test_y}
        return Outputs({s: predict_ensemble(build, ensemble, x).numpy() for s, x in xs.items()},
                       {s: y.numpy() for s, y in ys.items()})

    retain_rows = [split.retain] * len(seeds)
    originals, timings["originals_s"] = train_ensemble(build, data.train_x, data.train_y,
                                                       recipe, seeds)
    retrains, timings["retrains_s"] = train_ensemble(build, data.train_x, data.train_y, recipe,
                                                     seeds, indices_per_member=retain_rows)
    out = {"original": originals, "retrain": retrains}
    # methods.ft per member: the recipe at a constant lr, data order from seed + 1, on D_r
    settings = [(int(cfg.method.epochs), float(cfg.method.lr))]
    settings += [(int(e), float(lr)) for e, lr in (s.split(":") for s in args.ft)]
    for epochs, lr in settings:
        ft_recipe = replace(recipe, epochs=epochs, lr=lr, scheduler="constant")
        name = f"ft {epochs} ep, lr {lr:g}"
        out[name], timings[f"{name}_s"] = train_ensemble(
            build, data.train_x, data.train_y, ft_recipe, [s + 1 for s in seeds],
            init_states=originals, indices_per_member=retain_rows)
    start = time.perf_counter()
    out = {name: outputs(ensemble) for name, ensemble in out.items()}
    timings["predict_s"] = time.perf_counter() - start

    start = time.perf_counter()
    half = len(seeds) // 2
    second = out["retrain"][half:2 * half]
    methods = [name for name in out if name != "retrain"]
    rows = [compare(f"{name} vs retrain", out[name], out["retrain"]) for name in methods]
    rows += [compare(f"{name} vs retrain, N/2", out[name][:half], second) for name in methods]
    rows.append(compare("ceiling: retrain vs retrain, N/2", out["retrain"][:half], second))
    df = pd.DataFrame(rows)
    timings["scores_s"] = time.perf_counter() - start
    columns = ["comparison", "models", "F", "final", "median_eps", "U-LiRA", "KLoM_forget",
               "KLoM_forget_p95", "KLoM_retain", "KLoM_test", "FA", "RA", "TA", "F_s"]
    header = (f"{args.dataset} / {args.model} / random {args.fraction:g} "
              f"({len(split.forget)} forget examples), N = {len(seeds)} per side, "
              f"recipe {recipe.epochs} epochs; torch threads {torch.get_num_threads()}")
    times = ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
    text = (f"{header}\n\n{df[columns].to_markdown(index=False, floatfmt='.3f')}\n\n"
            f"seconds: {times}; total {sum(timings.values()):.1f}\n")
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()

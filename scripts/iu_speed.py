"""IU's reference mode: the recursion's scalars from forward-mode directional derivatives
(``gradients.per_sample_dots``, what ``methods/iu.py`` runs) against the per-sample gradients
it used before (vmap, chunks of 128), side by side in one process on this machine: the
same k (max relative difference printed) and the CPU seconds of each, best of ``--repeats``.

    python scripts/iu_speed.py [--dataset digits|fashion_mnist] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch
from hydra import compose, initialize_config_dir

from unlearnbench.gradients import mean_grad, per_sample_dots, per_sample_grads
from unlearnbench.methods.iu import reference_from_dots, reference_woodfisher
from unlearnbench.models import build_model
from unlearnbench.tasks.job_data import job_data
from unlearnbench.tuning import CONF_DIR


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = compose("config", [f"dataset={args.dataset}", "~tuned"])
    data, split = job_data(cfg)
    model = build_model(cfg["model"], data.input_shape, data.num_classes)
    x, y = data.train_x, data.train_y
    v = mean_grad(model, x[split.forget], y[split.forget])
    rows = split.retain[:1002]

    def grads_path() -> torch.Tensor:
        chunks = (g for _, g in per_sample_grads(model, x[rows], y[rows], 128))
        return reference_woodfisher(chunks, v, 1000, 1.0)

    def dots_path() -> torch.Tensor:
        first = mean_grad(model, x[rows[:1]], y[rows[:1]])
        rest = rows[1:]
        return reference_from_dots(first, v, per_sample_dots(model, x[rest], y[rest], v),
                                   per_sample_dots(model, x[rest], y[rest], first), 1000, 1.0)

    best = {}
    for name, fn in (("per-sample gradients", grads_path), ("forward-mode dots", dots_path)):
        fn()  # warm-up (functorch's first call traces)
        times = []
        for _ in range(args.repeats):
            t = time.process_time()
            k = fn()
            times.append(time.process_time() - t)
        best[name] = (min(times), k)
    (ta, ka), (tb, kb) = best.values()
    diff = ((ka - kb).abs().max() / ka.abs().max()).item()
    print(f"{args.dataset}: per-sample gradients {ta:.3f} s, forward-mode dots {tb:.3f} s "
          f"(CPU, best of {args.repeats}, 1 thread): {ta / tb:.1f}x; max |Δk|/max|k| {diff:.1e}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Tune every method that has a search space (conf/tune/) on digits and Fashion-MNIST (MLP),
class-wise and random, with the budget of conf/config.yaml's `tune` node: one
`unlearnbench-tune` study each, resumable (a finished study only rewrites its tuned file).

    python scripts/tune_all.py                      # everything (hours on 2 CPU cores)
    python scripts/tune_all.py method=ft,ga         # some methods
    python scripts/tune_all.py dataset=digits tune.trials=20

Arguments are `unlearnbench-tune` overrides and replace the defaults below. Run it again after
adding a method: the finished studies are kept, the new method's are run.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from unlearnbench.tuning import main  # noqa: E402

DEFAULTS = {"method": "glob(*)", "dataset": "digits,fashion_mnist", "model": "mlp",
            "scenario": "classwise,random"}

if __name__ == "__main__":
    given = {a.split("=", 1)[0] for a in sys.argv[1:]}
    sys.exit(main([*(f"{k}={v}" for k, v in DEFAULTS.items() if k not in given),
                   *sys.argv[1:]]))

#!/usr/bin/env python3
"""The committed tuned hyperparameters (conf/tuned/*.yaml) as one markdown table: per dataset x
scenario x method the selected values, the validation avg_gap (mean over the seeds a trial
scored), feasible trials of the budget, the seeds per trial and the study's wall-clock time
(for the README's "Tuning" section).

    python scripts/tuned_table.py [conf/tuned]
"""

import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _setting(stem: str) -> tuple[str, str, str, str]:
    """`fashion_mnist_mlp_random_l1_sparse` -> (fashion_mnist, mlp, random, l1_sparse)."""
    parts = []
    for group in ("dataset", "model", "scenario"):
        options = sorted((p.stem for p in (ROOT / "conf" / group).glob("*.yaml")), key=len,
                         reverse=True)
        option = next(o for o in options if stem.startswith(o + "_"))
        parts.append(option)
        stem = stem.removeprefix(option + "_")
    return parts[0], parts[1], parts[2], stem


def _value(v: object) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "conf" / "tuned"
    rows = []
    for path in sorted(folder.glob("*.yaml")):
        tuned = (yaml.safe_load(path.read_text()) or {}).get("runner", {}).get("tuned", {})
        dataset, model, scenario, method = _setting(path.stem)
        params = tuned.get("params")
        rows.append({
            "dataset": dataset, "scenario": scenario, "method": method,
            "selected": ", ".join(f"{k} {_value(v)}" for k, v in params.items()) if params
            else "none feasible: plain defaults",
            "validation avg_gap": f"{tuned['objective']:.2f}" if params else "—",
            "feasible / trials": f"{tuned.get('feasible')} / {tuned.get('trials')}",
            "seeds / trial": str(tuned.get("seeds", 1)),  # absent: tuned before seeds
            "study (s)": f"{tuned.get('seconds', float('nan')):.0f}",
        })
    print(pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

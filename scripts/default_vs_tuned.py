#!/usr/bin/env python3
"""Does validation tuning transfer to the test set? Test-set avg_gap of every method with its
plain defaults against its tuned defaults, per dataset x scenario, from two sweeps of the same
grid: one with `~tuned` (plain defaults) and one without (tuned files used). Also shows the
tuned file's validation avg_gap and the original (do nothing).

    unlearnbench -m +experiment=digits_all seed=0,1,2 '~tuned' \
        hydra.sweep.dir=results/sweeps/plain_digits
    unlearnbench -m +experiment=digits_all seed=0,1,2 hydra.sweep.dir=results/sweeps/tuned_digits
    python scripts/default_vs_tuned.py --plain results/sweeps/plain_digits \
        --tuned results/sweeps/tuned_digits -o results/tuning/default_vs_tuned.md
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

import pandas as pd  # noqa: E402

from unlearnbench.report.leaderboard import build_tables, load  # noqa: E402
from unlearnbench.report.tables import ci95  # noqa: E402

TUNED_DIR = Path(__file__).resolve().parents[1] / "conf" / "tuned"


def _gaps(dirs: list[Path]) -> dict[tuple[str, str, str], tuple[float, float, int]]:
    """(dataset, scenario, method) -> (mean avg_gap, 95% CI half-width, seeds)."""
    out = {}
    for table in build_tables(load(dirs)):
        for r in table.rows:
            mean, std = r["avg_gap"]
            out[(table.dataset, table.scenario, r["method"])] = (mean, ci95(std, r["n"]), r["n"])
    return out


def _validation(dataset: str, model: str, scenario: str, method: str) -> float | None:
    import yaml

    path = TUNED_DIR / f"{dataset}_{model}_{scenario}_{method}.yaml"
    if not path.exists():
        return None
    tuned = (yaml.safe_load(path.read_text()) or {}).get("runner", {}).get("tuned", {})
    return tuned.get("objective")


def _cell(value: tuple[float, float, int] | None) -> str:
    if value is None or pd.isna(value[0]):
        return "—"
    mean, half, _ = value
    return f"{mean:.2f}" if pd.isna(half) else f"{mean:.2f} ± {half:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", type=Path, nargs="+", required=True,
                        help="sweep folders run with ~tuned")
    parser.add_argument("--tuned", type=Path, nargs="+", required=True,
                        help="sweep folders run with the tuned files")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("-o", "--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args()
    plain, tuned = _gaps(args.plain), _gaps(args.tuned)
    rows = []
    for dataset, scenario, method in sorted(set(plain) | set(tuned)):
        if method == "retrain":
            continue
        key = (dataset, scenario, method)
        seeds = {v[2] for v in (plain.get(key), tuned.get(key)) if v}
        validation = None if method == "original" else _validation(
            dataset, args.model, scenario, method)
        rows.append({"dataset": dataset, "scenario": scenario,
                     "method": "original (do nothing)" if method == "original" else method,
                     "default (test)": _cell(plain.get(key)),
                     "tuned (test)": _cell(tuned.get(key)),
                     "tuned (validation)": "—" if validation is None else f"{validation:.2f}",
                     "seeds": ",".join(map(str, sorted(seeds)))})
    text = pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wall-clock seconds of each phase (data, original, retrain, method, metrics) per job of a
sweep or results folder, read from the jobs' timings.json.

    python scripts/phase_timings.py results/sweeps/<time>  [--out phases.md]

A phase of 0.0 for original/retrain means its model came from the cache.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def phase_table(root: Path) -> pd.DataFrame:
    rows = []
    for timings in sorted(root.rglob("timings.json")):
        job = timings.parent
        if not (job / "done").exists():
            continue
        meta = pd.read_csv(job / "metrics.csv").iloc[-1]
        rows.append({"job": job.name, "scenario": meta["scenario"], "seed": meta["seed"],
                     "method": meta["method"], **json.loads(timings.read_text())})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    df = phase_table(args.root)
    text = df.drop(columns="job").to_markdown(index=False, floatfmt=".2f")
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

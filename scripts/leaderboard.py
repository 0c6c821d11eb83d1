#!/usr/bin/env python3
"""Thin wrapper: `python scripts/leaderboard.py DIR... -o OUT` = `unlearnbench-leaderboard`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from unlearnbench.report.leaderboard import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

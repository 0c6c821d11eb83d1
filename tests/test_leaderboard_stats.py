"""What the leaderboard and the sweep summary say about a comparison: 95% confidence intervals
over seeds (Student t), the original (do nothing) ranked among the methods, and the tuning
budget read from the jobs' tuned records. Job folders are written with the product's writer."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import yaml

from unlearnbench.report.leaderboard import main
from unlearnbench.report.tables import ci95, summarise
from unlearnbench.results import tidy, write_job

REF = {"UA": 100.0, "RA": 100.0, "TA": 95.0, "FTA": 0.0, "MIA": 100.0}
ORIGINAL = {"UA": 0.0, "RA": 100.0, "TA": 96.0, "FTA": 95.0, "MIA": 0.0}  # avg_gap 50.25
TUNED = {"file": "conf/tuned/digits_mlp_classwise_ft.yaml", "trials": 30, "validation": 0.15,
         "max_cost": 0.25, "sampler": "TPE", "params": {"lr": 0.2}}


def _job(sweep: Path, method: str, seed: int, ua: float, tuned: bool) -> None:
    base = {"dataset": "digits", "model": "mlp", "scenario": "classwise", "seed": seed,
            "method": method, "config_hash": f"{method}{seed}".ljust(64, "0")}
    scores = {**REF, "UA": ua}
    gaps = {f"gap_{m}": abs(scores[m] - REF[m]) for m in ("UA", "RA", "TA", "MIA")}
    rows = [{**base, "role": "original", "status": "ok", **ORIGINAL},
            {**base, "role": "retrain", "status": "ok", **REF, "RTE_s": 1.0, "speedup": 1.0,
             **{g: 0.0 for g in gaps}, "avg_gap": 0.0},
            {**base, "role": "unlearned", "status": "ok", **scores, "RTE_s": 0.1,
             "speedup": 10.0, **gaps, "avg_gap": sum(gaps.values()) / 4}]
    method_cfg = {"_target_": f"unlearnbench.methods.{method}.unlearn", "lr": 0.2 if tuned
                  else 0.05, "runner": {"access": "full", **({"tuned": TUNED} if tuned else {})}}
    write_job(sweep / f"{method}_{seed}", tidy(rows), None,
              {"config.yaml": yaml.safe_dump({"seed": seed, "method": method_cfg})})


def test_ci95_is_the_student_t_interval() -> None:
    # t(0.975, 4) = 2.7764 (a t table); 5 seeds with std 1: 2.7764 / sqrt(5)
    assert math.isclose(ci95(1.0, 5), 2.7764 / math.sqrt(5), rel_tol=1e-4)
    assert math.isclose(ci95(2.0, 2), 12.706 * 2 / math.sqrt(2), rel_tol=1e-4)  # t(.975, 1)
    assert math.isnan(ci95(1.0, 1)) and math.isnan(ci95(math.nan, 5))


def test_leaderboard_ranks_doing_nothing_and_states_the_budget(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    uas = [60.0, 62.0, 64.0, 66.0, 68.0]  # ft: avg_gap 10 ± ..., better than doing nothing
    for seed, ua in enumerate(uas):
        _job(sweep, "ft", seed, ua, tuned=True)
        _job(sweep, "ga", seed, 0.0, tuned=False)  # avg_gap 25: the original's UA gap alone
    assert main([str(sweep), "-o", str(tmp_path / "lb")]) == 0
    lb = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    gap = lb[lb.metric == "avg_gap"].set_index("label")
    assert list(gap.sort_values("rank")["rank"]) == ["1", "2", "3", "ref"]
    assert gap.loc["original (do nothing)", "rank"] == "3"  # behind ft and ga
    ft_gaps = pd.Series([(100 - ua) / 4 for ua in uas])
    assert math.isclose(gap.loc["ft", "ci95"], 2.7764 * ft_gaps.std() / math.sqrt(5),
                        rel_tol=1e-4)
    text = (tmp_path / "lb" / "LEADERBOARD.md").read_text()
    assert ("Tuned (30 trials (TPE), one seed each (seed 0), validation split 0.15, max_cost "
            "0.25 × retrain time") in text
    assert "Plain defaults (never tuned for this setting): ga." in text
    assert "95% confidence interval" in text
    row = next(line for line in text.splitlines() if line.startswith("| 1 "))
    half = 2.7764 * ft_gaps.std() / math.sqrt(5)
    assert f"{ft_gaps.mean():.2f} ± {half:.2f}" in row


def test_fewer_than_five_seeds_is_said(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for seed in range(2):
        _job(sweep, "ft", seed, 60.0 + seed, tuned=True)
    assert main([str(sweep), "-o", str(tmp_path / "lb")]) == 0
    assert "Only 2 seed(s)" in (tmp_path / "lb" / "LEADERBOARD.md").read_text()


def test_sweep_summary_ranks_the_original_per_seed(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for seed in range(2):
        _job(sweep, "ft", seed, 90.0, tuned=True)     # avg_gap 2.5
        _job(sweep, "ga", seed, 0.0, tuned=False)     # avg_gap 25
        _job(sweep, "retrain", seed, 100.0, tuned=False)
    rows = summarise(sweep)
    assert set(rows.columns) >= {"rank", "method", "avg_gap"}
    for seed in range(2):
        part = rows[rows.seed == seed]
        assert list(part.method) == ["retrain", "ft", "ga", "original (do nothing)"]
        assert list(part["rank"]) == ["ref", "1", "2", "3"]
        assert math.isclose(part.avg_gap.iloc[-1], (100 + 0 + 1 + 100) / 4)
    assert (sweep / "summary.csv").exists() and "original (do nothing)" in \
        (sweep / "summary.md").read_text()

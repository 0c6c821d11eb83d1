"""The CI leaderboard check: the `smoke` experiment (every method x both scenarios x 2 seeds on
digits), killed mid-way and resumed, then the leaderboard built from it and checked: every
method present, no method failed, retrain gaps zero, every number parses, plots exist.
A broken method or a broken table fails here."""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import CONF_DIR, task_overrides
from .test_cli import CLI

ROOT = CONF_DIR.parent
# The classification methods: the smoke sweep's glob skips the generative ones (another task).
METHODS = sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml")
                 if not task_overrides("method", p.stem))
SCENARIOS = ["classwise", "random"]


def _forgets_classes(method: str) -> bool:
    node = yaml.safe_load((CONF_DIR / "method" / f"{method}.yaml").read_text())
    return bool(node["runner"].get("forgets_classes", False))


# A class-wise-only method (UNSIR, GKT, ...) has no job under scenario=random: the sweep skips it.
APPLICABLE = {"classwise": METHODS,
              "random": [m for m in METHODS if not _forgets_classes(m)]}
SEEDS = 2
JOBS = sum(len(APPLICABLE[s]) for s in SCENARIOS) * SEEDS
NUMBER = r"-?\d+(?:\.\d+)?"
CELL = re.compile(rf"^(—|{NUMBER}|{NUMBER} ± {NUMBER})$")


def _done(sweep_dir: Path) -> dict[str, int]:
    """Finished job folders and the modification time of their metrics.csv."""
    return {p.parent.name: (p.parent / "metrics.csv").stat().st_mtime_ns
            for p in sweep_dir.glob("*/done")}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run `unlearnbench -m +experiment=smoke`, SIGKILL it after its first finished job, run the
    same command again (it resumes), then `scripts/leaderboard.py` on the sweep folder."""
    results = tmp_path_factory.mktemp("smoke")
    sweep_dir = results / "sweeps" / "smoke"  # the experiment's fixed sweep folder
    command = [CLI, "-m", "+experiment=smoke", f"results_dir={results}"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not _done(sweep_dir) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed = _done(sweep_dir)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    out = results / "leaderboard"
    board = subprocess.run([sys.executable, str(ROOT / "scripts" / "leaderboard.py"),
                            str(sweep_dir), "-o", str(out)], capture_output=True, text=True,
                           timeout=120)
    return {"sweep": sweep_dir, "killed": killed, "rerun": rerun, "board": board, "out": out}


def test_killed_sweep_resumes_and_keeps_finished_jobs(smoke: dict) -> None:
    total = JOBS
    killed, rerun = smoke["killed"], smoke["rerun"]
    assert 0 < len(killed) < total, f"the kill should land mid-sweep ({len(killed)} done)"
    assert rerun.returncode == 0, rerun.stderr
    after = _done(smoke["sweep"])
    assert len(after) == total
    assert rerun.stdout.count("skipped: same config") == len(killed)
    assert all(after[name] == mtime for name, mtime in killed.items())  # not recomputed
    summary = pd.read_csv(smoke["sweep"] / "summary.csv")
    jobs = summary[summary.role == "unlearned"]
    assert len(jobs) == total and not jobs.duplicated(["method", "scenario", "seed"]).any()
    # The original (do nothing) once per scenario and seed, ranked with the methods.
    originals = summary[summary.role == "original"]
    assert len(originals) == len(SCENARIOS) * SEEDS
    assert set(originals.method) == {"original (do nothing)"}
    for _, part in summary.groupby(["scenario", "seed"]):
        ranked = part[part["rank"] != "ref"].sort_values("avg_gap")
        assert list(ranked["rank"].astype(int)) == list(range(1, len(ranked) + 1))


def test_leaderboard_has_every_method_and_sound_numbers(smoke: dict) -> None:
    assert smoke["board"].returncode == 0, smoke["board"].stderr
    out = smoke["out"]
    lb = pd.read_csv(out / "leaderboard.csv")
    assert sorted(lb.scenario.unique()) == SCENARIOS
    for scenario in SCENARIOS:
        rows = lb[(lb.scenario == scenario) & (lb.kind != "original")]
        assert sorted(rows.method.unique()) == APPLICABLE[scenario], scenario
        # No method may fail on the smoke sweep, and every seed counts.
        assert (rows.n_seeds == SEEDS).all() and (rows.n_failed == 0).all(), scenario
        ref = rows[rows.method == "retrain"].set_index("metric")
        for gap in ["gap_UA", "gap_RA", "gap_TA", "gap_MIA", "avg_gap"]:
            assert ref.loc[gap, "mean"] == 0 and ref.loc[gap, "std"] == 0, gap
        # avg_gap is the mean of the four gaps, and ranks follow it.
        wide = rows.pivot(index="label", columns="metric", values="mean")
        gaps = wide[["gap_UA", "gap_RA", "gap_TA", "gap_MIA"]].mean(axis=1)
        assert (wide.avg_gap - gaps).abs().max() < 1e-6
        # The original (do nothing) is ranked among the methods.
        ranked = lb[(lb.scenario == scenario) & (lb.metric == "avg_gap")
                    & lb.kind.isin(["method", "original"])].copy()
        ranked["rank"] = ranked["rank"].astype(int)
        assert list(ranked.sort_values("rank")["mean"]) == sorted(ranked["mean"])
        # every applicable method but the reference, and the original (do nothing)
        assert sorted(ranked["rank"]) == list(range(1, len(APPLICABLE[scenario]) + 1))
        assert "original (do nothing)" in set(ranked.label)


def test_markdown_and_html_tables_parse(smoke: dict) -> None:
    out = smoke["out"]
    text = (out / "LEADERBOARD.md").read_text()
    assert "unlearnbench -m +experiment=smoke" in text.split("## ")[0]  # how to regenerate
    tables = re.findall(r"^## (.+)\n\n((?:\|.*\n)+)", text, flags=re.M)
    assert [t for t, _ in tables] == [f"digits · mlp · {s}" for s in SCENARIOS]
    for title, body in tables:
        lines = [[c.strip() for c in line.strip("|").split("|")] for line in body.splitlines()]
        header, rows = lines[0], lines[2:]
        assert header[:3] == ["rank", "method", "seeds"] and "avg_gap ↓" in header
        assert rows[0][:2] == ["ref", "retrain"], title  # the reference first
        original = [r for r in rows if r[1] == "original (do nothing)"]
        assert len(original) == 1 and original[0][0].isdigit(), title  # ranked
        assert {r[1] for r in rows} >= set(APPLICABLE[title.split(" · ")[-1]])
        for row in rows:
            for name, value in zip(header[3:], row[3:], strict=True):
                assert CELL.match(value), f"{title}: {row[1]} {name} = {value!r}"
                numbers = [float(v) for v in re.findall(NUMBER, value)]
                assert all(math.isfinite(v) for v in numbers)
        gap_col = header.index("avg_gap ↓")
        assert rows[0][gap_col] == "0.00 ± 0.00"
    page = (out / "leaderboard.html").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert len(images) == 2 * len(SCENARIOS)  # a radar and a scatter per table
    for image in images:
        assert (out / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({image})" in text  # the markdown shows the same plots


def test_console_command_is_declared() -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["unlearnbench-leaderboard"] == "unlearnbench.report.leaderboard:main"


def test_no_results_is_one_clear_error(tmp_path: Path) -> None:
    from unlearnbench.report.leaderboard import main

    assert main([str(tmp_path), "-o", str(tmp_path / "lb")]) == 2
    assert not (tmp_path / "lb").exists()

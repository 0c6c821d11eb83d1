"""Sweeps that survive failure: resume by config, crashed jobs as failed rows, a parallel
launcher, the model cache under concurrent processes, named experiments, GPU choice.
(Killing a real sweep and resuming it: tests/test_leaderboard.py.)"""

from __future__ import annotations

import multiprocessing
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from rich.console import Console

from unlearnbench import sweep
from unlearnbench.cache import ModelCache
from unlearnbench.errors import DatasetMissingError
from unlearnbench.preflight import _jobs, preflight
from unlearnbench.report.leaderboard import build
from unlearnbench.runner import run
from unlearnbench.schema import ORIGINAL_LABEL, config_hash
from unlearnbench.validation import resolved

from .conftest import CONF_DIR, make_cfg
from .test_cli import CLI

FAST = ["dataset=synthetic", "train.epochs=2"]


def _sweep(results: Path, sweep_dir: Path, *args: str) -> list[str]:
    return [CLI, "-m", f"results_dir={results}", f"hydra.sweep.dir={sweep_dir}", "progress=false",
            *FAST, *args]


def test_changed_config_is_not_skipped(tmp_path: Path) -> None:
    cfg = make_cfg(*FAST, "method=ga", results_dir=tmp_path)
    chash = config_hash(resolved(cfg))
    first = tmp_path / "sweep" / "0_job"
    run(cfg, first, Console(quiet=True))
    second = tmp_path / "sweep" / "1_job"
    second.mkdir()
    assert sweep.find_done(first, chash) == first
    assert sweep.find_done(second, chash) == first
    other = make_cfg(*FAST, "method=ga", "method.lr=0.01", results_dir=tmp_path)
    assert sweep.find_done(second, config_hash(resolved(other))) is None
    (first / "done").unlink()  # unfinished: recomputed
    assert sweep.find_done(second, chash) is None


def test_parallel_sweep_with_a_crashed_job(tmp_path: Path) -> None:
    """joblib launcher, 2 processes: the job whose original training diverges becomes a failed
    row with its reason; the other finishes; the summary and the leaderboard show both."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher",
                        reason="hydra-joblib-launcher not installed (pip install -e '.[joblib]')")
    results, sweep_dir = tmp_path / "results", tmp_path / "sweep"
    proc = subprocess.run(_sweep(results, sweep_dir, "hydra/launcher=local",
                                 "hydra.launcher.n_jobs=2", "method=ft", "train.lr=0.05,90"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "JoblibLauncher" in proc.stdout or "Joblib.Parallel" in proc.stdout
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert len(jobs) == 2 and all((j / "done").exists() for j in jobs)
    summary = pd.read_csv(sweep_dir / "summary.csv")
    # one row per job, and the original (do nothing) ranked among them
    assert (summary.method == ORIGINAL_LABEL).sum() == 1
    summary = summary[summary.method != ORIGINAL_LABEL].set_index("status")
    assert sorted(summary.index) == ["failed", "ok"]
    assert "job crashed: DivergenceError" in summary.loc["failed", "reason"]
    crashed = next(j for j in jobs if (j / "traceback.txt").exists())
    assert "DivergenceError" in (crashed / "traceback.txt").read_text()
    assert "1 failed" in proc.stdout

    tables = build([sweep_dir], tmp_path / "lb", ["x"])
    # Different recipes are not comparable: one table per train.lr, named by it.
    assert sorted(t.context for t in tables) == ["train.lr=0.05", "train.lr=90"]
    bad = next(t for t in tables if t.context.endswith("=90"))
    row = next(r for r in bad.rows if r["method"] == "ft")
    assert row["n"] == 0 and row["n_failed"] == 1 and row["rank"] == "–"
    text = (tmp_path / "lb" / "LEADERBOARD.md").read_text()
    assert "0 (1 failed)" in text and "job crashed: DivergenceError" in text


def _cache_worker(root: str, barrier, queue) -> None:
    def create():
        time.sleep(0.5)  # long enough for the other process to arrive and wait on the lock
        with open(Path(root) / "trainings.txt", "a") as f:
            f.write("trained\n")
        return {"w": torch.ones(4)}, {"train_seconds": 0.5}

    barrier.wait()
    entry = ModelCache(root, log=lambda m: None).get_or_create({"role": "original"}, create)
    queue.put(entry.hit)


def test_two_processes_share_one_cache_entry(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_cache_worker, args=(str(tmp_path), barrier, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(queue.get(timeout=5) for _ in procs) == [False, True]  # one trains, one hits
    assert (tmp_path / "trainings.txt").read_text() == "trained\n"
    assert not list(tmp_path.glob("*.tmp"))


EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def _missing(name: str) -> list[str]:
    """Config groups and methods an experiment sweeps over that this checkout lacks."""
    params = OmegaConf.select(OmegaConf.load(CONF_DIR / "experiment" / f"{name}.yaml"),
                              "hydra.sweeper.params") or {}
    top = OmegaConf.load(CONF_DIR / "config.yaml")
    missing = [f"conf/{k}/" for k in params
               if "." not in k and k not in top and not (CONF_DIR / k).is_dir()]
    methods = str(params.get("method", ""))
    if not methods.startswith("glob("):
        missing += [f"method={m}" for m in methods.split(",")
                    if not (CONF_DIR / "method" / f"{m}.yaml").is_file()]
    return missing


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_preflights_as_a_sweep(name: str) -> None:
    missing = _missing(name)
    if missing:
        pytest.skip(f"experiment {name} needs {', '.join(missing)}, not in this checkout "
                    "(the sparsity track adds them)")
    # Raises on any bad job; one seed suffices (seeds do not change what composes). The data
    # check of every job runs too: a dataset that is not here is one clear error.
    try:
        preflight(["-m", f"+experiment={name}", "seed=0"], CONF_DIR)
    except DatasetMissingError as exc:
        assert "download" in str(exc)
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        jobs = _jobs([f"+experiment={name}"], multirun=True)
        overridden = _jobs([f"+experiment={name}", "seed=7"], multirun=True)
    methods = len(list((CONF_DIR / "method").glob("*.yaml")))
    params = OmegaConf.select(OmegaConf.load(CONF_DIR / "experiment" / f"{name}.yaml"),
                              "hydra.sweeper.params") or {}
    expected = 1
    for key, values in params.items():
        expected *= methods if key == "method" and "glob" in str(values) else \
            len(str(values).split(","))
    assert len(jobs) == expected
    seeds = len(str(params.seed).split(",")) if "seed" in params else 1
    assert len(overridden) == expected // seeds  # the command line replaces a sweep param
    assert all("seed=7" in job for job in overridden)


def test_gpu_round_robin() -> None:
    assert [sweep.gpu_for_job(n, 4) for n in range(6)] == [0, 1, 2, 3, 0, 1]
    assert sweep.gpu_for_job(5, 1) is None  # one GPU: nothing to choose
    assert sweep.assign_gpu("cpu", 3) is None
    if not torch.cuda.is_available():
        assert sweep.assign_gpu("auto", 3) is None


def test_slurm_launcher_takes_the_documented_keys(tmp_path: Path) -> None:
    """What a cluster user sets composes into the submitit plugin's own launcher."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                        reason="hydra-submitit-launcher not installed (pip install -e '.[slurm]')")
    from hydra.utils import instantiate

    cfg = make_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                   "hydra.launcher.gpus_per_node=2", "hydra.launcher.timeout_min=720",
                   "hydra.launcher.array_parallelism=8", results_dir=tmp_path,
                   return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    assert {k: launcher.params[k] for k in ("partition", "gpus_per_node", "timeout_min",
                                            "array_parallelism")} == {
        "partition": "gpu", "gpus_per_node": 2, "timeout_min": 720, "array_parallelism": 8}


def test_stored_score_reads_a_finished_jobs_rows_or_scores_inf(tmp_path: Path) -> None:
    """A rerun's finished job is scored from its csv; one that cannot be read is infeasible."""
    good = tmp_path / "metrics.csv"
    good.write_text("role,avg_gap\noriginal,50.0\nunlearned,1.5\n")

    def unlearned_gap(rows: pd.DataFrame) -> float:
        return float(rows[rows.role == "unlearned"].avg_gap.iloc[0])

    assert sweep.stored_score(good, unlearned_gap) == 1.5
    assert sweep.stored_score(tmp_path / "missing.csv", unlearned_gap) == float("inf")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert sweep.stored_score(empty, unlearned_gap) == float("inf")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00role\n\x80\x81")
    assert sweep.stored_score(binary, unlearned_gap) == float("inf")

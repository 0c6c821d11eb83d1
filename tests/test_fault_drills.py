"""Fault drills: what a user's machine does to a run, each a regression test (issue 9).

- Ctrl-C mid-training: one line, exit 130, no traceback, the user's files and the folder the
  run was pointed at untouched; a sweep interrupted mid-job resumes.
- A job that crashes inside a sweep is a failed row and the sweep goes on; a finished job
  whose metrics.csv is not UTF-8 is run again (one warning naming the file) on resume;
  extending the grid in the same folder never touches a finished job.
- The disk filling up while a job writes its files: one line, no partial file.
- A method that diverges is a `failed` row, never `ok`.
- A download that fails half-way leaves nothing in the data folder.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from unlearnbench import results as results_module
from unlearnbench.cli import INTERRUPTED
from unlearnbench.data import load_data
from unlearnbench.errors import DatasetMissingError, UserError
from unlearnbench.runner import run
from unlearnbench.schema import ORIGINAL_LABEL

from .bad_input_corpus import REPO, snapshot
from .conftest import make_cfg

SYNTH = ["dataset=synthetic", "progress=false"]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "unlearnbench.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _interrupt_when(proc: subprocess.Popen, ready, timeout: float = 240) -> None:
    """SIGINT (Ctrl-C) to ``proc`` as soon as ``ready()`` holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "the run never reached the point to interrupt"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)


def _assert_interrupted(proc: subprocess.Popen) -> None:
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == [f"unlearnbench: error: {INTERRUPTED}"], stderr
    assert "Traceback" not in stderr


def test_ctrl_c_mid_training_leaves_the_users_folder_as_it_was(tmp_path: Path) -> None:
    """`hydra.run.dir=.` in a folder of the user's (issue 9 item 1: this deleted their
    notes.log and the folder itself)."""
    work, results = tmp_path / "work", tmp_path / "results"
    (work / "old_run").mkdir(parents=True)
    (work / "notes.log").write_text("the user's notes\n")
    (work / "old_run" / "result.txt").write_text("keep me\n")
    before = snapshot(work)
    proc = subprocess.Popen(_command(*SYNTH, "train.epochs=500", f"results_dir={results}",
                                     "hydra.run.dir=."), cwd=work, env=_env(), text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # The cache's lock for the original appears right before its training starts.
    _interrupt_when(proc, lambda: any((results / "cache").glob("*.lock")))
    _assert_interrupted(proc)
    assert snapshot(work) == before
    assert not list(results.rglob("*.safetensors")) and not list(results.rglob("*.tmp"))


def _sweep(sweep_dir: Path, results: Path, *args: str) -> list[str]:
    return _command("-m", *SYNTH, "train.epochs=3", f"results_dir={results}",
                    f"hydra.sweep.dir={sweep_dir}", *args)


def _finished(sweep_dir: Path) -> dict[str, int]:
    """Finished job folders and the modification time of their metrics.csv."""
    return {p.parent.name: (p.parent / "metrics.csv").stat().st_mtime_ns
            for p in sweep_dir.glob("*/done")}


def test_ctrl_c_mid_sweep_then_the_same_command_resumes(tmp_path: Path) -> None:
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    command = _sweep(sweep_dir, results, "seed=0,1")
    proc = subprocess.Popen(command, cwd=tmp_path, env=_env(), text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Job 1 finished, job 2 has started training its original (a third cache lock).
    _interrupt_when(proc, lambda: _finished(sweep_dir)
                    and len(list((results / "cache").glob("*.lock"))) >= 3)
    _assert_interrupted(proc)
    first = _finished(sweep_dir)
    assert len(first) == 1
    again = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("skipped: same config") == 1
    after = _finished(sweep_dir)
    assert len(after) == 2 and all(after[k] == v for k, v in first.items())
    summary = pd.read_csv(sweep_dir / "summary.csv")
    summary = summary[summary.method != ORIGINAL_LABEL]  # each seed's original is ranked too
    assert sorted(summary.seed) == [0, 1] and set(summary.status) == {"ok"}


def test_crash_corrupt_resume_and_extended_grid(tmp_path: Path) -> None:
    """One sweep folder through three commands: a job whose training diverges is a failed row
    and the next job still runs; a non-UTF-8 metrics.csv of a finished job makes the resume
    run that job again (one warning naming the file) instead of crashing; a wider grid in
    the same folder runs only the new job and never touches a finished one."""
    sweep_dir, results = tmp_path / "sweep", tmp_path / "results"
    first = subprocess.run(_sweep(sweep_dir, results, "train.lr=90,0.05"), cwd=tmp_path,
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    summary = pd.read_csv(sweep_dir / "summary.csv")
    summary = summary[summary.method != ORIGINAL_LABEL].set_index("status")
    assert sorted(summary.index) == ["failed", "ok"]
    assert "DivergenceError" in summary.loc["failed", "reason"]

    done = _finished(sweep_dir)
    ok_job = next(n for n in done if not (sweep_dir / n / "traceback.txt").exists())
    failed_job = next(n for n in done if n != ok_job)
    (sweep_dir / ok_job / "metrics.csv").write_bytes(b"\xff\xfe\x00garbage\x80\n")
    resumed = subprocess.run(_sweep(sweep_dir, results, "train.lr=90,0.05"), cwd=tmp_path,
                             env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr
    warnings = [line for line in resumed.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"{ok_job}/metrics.csv is unreadable" in warnings[0]
    assert resumed.stdout.count("skipped: same config") == 1  # the failed job
    rerun = pd.read_csv(sweep_dir / ok_job / "metrics.csv")
    assert set(rerun.status) == {"ok"}
    assert _finished(sweep_dir)[failed_job] == done[failed_job]

    before = _finished(sweep_dir)
    wider = subprocess.run(_sweep(sweep_dir, results, "train.lr=90,0.05,0.02"),
                           cwd=tmp_path, env=_env(), capture_output=True, text=True,
                           timeout=600)
    assert wider.returncode == 0, wider.stderr
    assert wider.stdout.count("skipped: same config") == 2
    after = _finished(sweep_dir)
    assert len(after) == 3 and all(after[k] == v for k, v in before.items())
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert (summary.method != ORIGINAL_LABEL).sum() == 3  # plus the originals, ranked


def test_disk_full_while_writing_the_job_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forget indices are written after metrics.csv: the disk fills up half-way."""
    def full(path: Path, array) -> None:
        path.write_bytes(b"\x93NUMPY partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(results_module, "save_npy", full)
    cfg = make_cfg("dataset=synthetic", "train.epochs=2", results_dir=tmp_path / "results")
    job = tmp_path / "job"
    with pytest.raises(UserError) as exc:
        run(cfg, job, Console(quiet=True))
    line = str(exc.value)
    assert "\n" not in line and line.startswith(f"results_dir: cannot write the job's files "
                                                f"in {job}") and "No space left" in line
    assert not [p for p in job.rglob("*") if p.is_file()]


def test_a_method_that_diverges_is_a_failed_row(tmp_path: Path) -> None:
    cfg = make_cfg("dataset=synthetic", "train.epochs=2", "method=ga", "method.lr=100",
                   "method.epochs=3", results_dir=tmp_path)
    df = run(cfg, tmp_path / "job", Console(quiet=True)).set_index("role")
    assert df.loc["unlearned", "status"] == "failed"
    assert "non-finite" in df.loc["unlearned", "reason"]
    assert pd.isna(df.loc["unlearned", "avg_gap"])
    assert (df.loc[["original", "retrain"], "status"] == "ok").all()


def test_a_failed_download_leaves_no_partial_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline (or a broken mirror): the download gives up half-way; the user's data folder
    is as it was, and the line says what to do."""
    import torchvision

    class Offline:
        def __init__(self, root: str, download: bool, **kwargs) -> None:
            raw = Path(root) / "MNIST" / "raw"
            raw.mkdir(parents=True)
            (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b partial")
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    data_root = tmp_path / "data"
    data_root.mkdir()
    (data_root / "mine.txt").write_text("the user's file\n")
    before = snapshot(tmp_path)
    cfg = {"_target_": "unlearnbench.data.mnist", "name": "mnist", "num_classes": 10,
           "download": True}
    with pytest.raises(DatasetMissingError, match=r"^dataset.download: could not download "
                                                  r"MNIST .*nothing partial was kept\)$"):
        load_data(cfg, data_root)
    assert snapshot(tmp_path) == before

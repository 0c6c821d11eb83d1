"""The console command as a user runs it: bad input, a sweep and its summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

CLI = str(Path(sys.executable).parent / "unlearnbench")


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, f"results_dir={tmp_path / 'results'}", "progress=false", *args],
                          capture_output=True, text=True, timeout=300)


BAD = [
    # an option of one task with the other (issue 14)
    (["task=inpainting", "method=sisa"], "method=sisa", "i2i_encoder, max_loss"),
    (["task=inpainting", "model=mlp"], "model=mlp", "ddpm, mae, vqgan"),
    (["task=classification", "method=i2i_encoder"], "method=i2i_encoder", "ft"),
    (["method=nope"], "method=nope", "ft"),
    (["dataset=imagenet"], "dataset=imagenet", "digits"),
    (["scenario=random", "scenario.fraction=1.5"], "scenario.fraction=1.5", "0 < fraction < 1"),
    (["scenario.forget_classes=[12]"], "scenario.forget_classes", "[0, 9]"),
    (["scenario.forget_classes=[0,1,2,3,4,5,6,7,8,9]"], "scenario.forget_classes", "retain"),
    (["scenario=random", "scenario.fractio=0.2"], "scenario.fractio", "fraction"),
    (["dataset=cifar10", "data_root=/nonexistent"], "dataset=cifar10", "download"),
    (["-m", "scenario=random", "scenario.fraction=0.1,2"], "scenario.fraction=2", "fraction"),
    (["scenario=samples", "scenario.count=0"], "scenario.count=0", "1 <= count < n_train"),
    (["scenario=samples", "scenario.count=1347"], "scenario.count=1347", "n_train=1347"),
    (["method=sisa", "method.runner.training.shards=0"], "method.runner.training.shards=0",
     "an integer in [1,"),
    (["method=sisa", "method.aggregation=vote"], "method.aggregation=vote", "majority"),
    (["method=rl", "method.labels=wrong"], "method.labels=wrong", "other_class"),
    (["method=iu", "method.direction=up"], "method.direction=up", "forget_gradient"),
    (["method=ff", "method.zero_forgotten_head=maybe"], "method.zero_forgotten_head=maybe",
     "auto"),
    (["eval.metrics.mia.solver=svm"], "eval.metrics.mia.solver=svm", "interior_point"),
    (["eval.metrics.mia.kernel_tol=0.5"], "eval.metrics.mia.kernel_tol=0.5", "(0, 1e-3]"),
    (["method=salun", "method.mask_ratio=0"], "method.mask_ratio=0", "(0, 1]"),
    (["method=scrub", "method.setting=medium"], "method.setting=medium", "auto, small, large"),
    (["method=scrub", "method.optimizer=rmsprop"], "method.optimizer=rmsprop", "adam, sgd"),
    (["method=scrub", "method.msteps=-1"], "method.msteps=-1", "an integer in [0,"),
    (["method=neggrad_plus", "method.beta=1.5"], "method.beta=1.5", "[0, 1]"),
    (["method=ssd", "method.importance=fisher"], "method.importance=fisher", "label_free"),
    (["method=ssd", "method.selection_weighting=0"], "method.selection_weighting=0", "(0, inf)"),
    (["eval.metrics.relearn.steps=0"], "eval.metrics.relearn.steps=0", "an integer in [1,"),
    (["eval.metrics.relearn.gaps.gap_UA=relearn_FA"], "eval.metrics.relearn.gaps.gap_UA",
     "gap_relearn"),
    # the zero-shot family (issue 11)
    (["method=unsir", "scenario=random"], "scenario=random", "classwise"),
    (["method=gkt", "method.beta=-1"], "method.beta=-1", "a number in [0, inf)"),
    (["method=unsir_zero_shot", "method.mode=broken"], "method.mode=broken", "fixed"),
    (["model=allcnn", "model.width=0"], "model.width=0", "a number in [0.01, 16]"),
    (["eval.metrics.anamnesis.alpha=1.5"], "eval.metrics.anamnesis.alpha=1.5", "(0, 1)"),
    (["eval.metrics.anamnesis.relative.AIN.op=product"],
     "eval.metrics.anamnesis.relative.AIN.op",
     "ratio, difference"),
    (["model=cnn", "eval.judge.model.name=cnn", "eval.judge.model.channels=[32,64]"],
     "eval.judge.model=cnn", "an architecture other than"),
    (["scenario=backdoor", "scenario.size=7"], "scenario.size=7", "size + margin <= 8"),
    (["scenario=backdoor", "scenario.target_class=10"], "scenario.target_class=10", "[0, 9]"),
    (["scenario=backdoor", "scenario.poison_ratio=1"], "scenario.poison_ratio=1",
     "0 < poison_ratio < 1"),
]


@pytest.fixture(scope="module")
def forked():
    """The console entry point, forked per command after one import (tests/forked_cli.py):
    the same main(), argv, exit status and streams, without ~5 s of imports per case. The
    corpus (tests/test_bad_input.py) checks that both ways agree."""
    from .forked_cli import ForkedCli

    server = ForkedCli(Path(__file__).resolve().parents[1])
    yield server
    server.close()


@pytest.mark.parametrize(("args", "names", "allowed"), BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_input_is_one_clear_line(tmp_path: Path, forked, args, names: str,
                                     allowed: str) -> None:
    proc = forked.run([f"results_dir={tmp_path / 'results'}", "progress=false", *args],
                      cwd=tmp_path, out_dir=tmp_path / "streams", timeout=300)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert names in lines[0] and allowed in lines[0] and "Traceback" not in proc.stderr
    leftovers = list((tmp_path / "results").rglob("*")) if (tmp_path / "results").exists() else []
    assert not [p for p in leftovers if p.is_file()], leftovers


def test_sweep_writes_jobs_and_one_summary(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = cli(tmp_path, "-m", "dataset=synthetic", "train.epochs=2", "method=ft,ga",
               "scenario=classwise,random", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr
    jobs = [p for p in sweep.iterdir() if p.is_dir()]
    assert len(jobs) == 4 and all((j / "done").exists() for j in jobs)
    summary = pd.read_csv(sweep / "summary.csv")
    jobs = summary[summary.role == "unlearned"]
    assert sorted(zip(jobs.method, jobs.scenario, strict=True)) == sorted(
        [("ft", "classwise"), ("ft", "random"), ("ga", "classwise"), ("ga", "random")])
    originals = summary[summary.role == "original"]  # ranked with them, once per scenario
    assert sorted(originals.scenario) == ["classwise", "random"]
    assert (sweep / "summary.md").is_file() and "sweep summary" in proc.stdout
    assert "cache hit" in proc.stdout  # the second method reuses the first one's models


def test_run_dir_override_holds_the_outputs(tmp_path: Path) -> None:
    out = tmp_path / "here"
    proc = cli(tmp_path, "dataset=synthetic", "train.epochs=2", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    assert (out / "metrics.csv").is_file() and (out / "done").is_file()

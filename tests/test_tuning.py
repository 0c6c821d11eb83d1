"""The tuning protocol (README "Tuning"): search spaces inside the methods' typed ranges, the
validation split in place of the test set, the cost cap, tuned files picked up (and
overridden), the tuner end to end from the README's command (killed and resumed), and the
proof that it never reads the test set (poisoned test tensors change nothing)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from rich.console import Console

from unlearnbench import runner, schema, tuning
from unlearnbench.data import Data, hold_out_validation, load_data
from unlearnbench.params import keyword_parameters
from unlearnbench.tasks.job_data import job_data
from unlearnbench.validation import validate

from .conftest import CONF_DIR, SYNTH, make_cfg, task_overrides

ROOT = CONF_DIR.parent
SPACES = sorted(p.stem for p in (CONF_DIR / "tune").glob("*.yaml"))
METHODS = sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml"))
TUNED = sorted((CONF_DIR / "tuned").glob("*.yaml"))
TUNE = [sys.executable, "-m", "unlearnbench.tuning"]  # `unlearnbench-tune`, this checkout


def _space(method: str) -> dict[str, str]:
    text = (CONF_DIR / "tune" / f"{method}.yaml").read_text()
    assert text.startswith("# @package _global_"), method
    return yaml.safe_load(text)["hydra"]["sweeper"]["params"]


def _ends(value: str) -> list[str]:
    """Both ends of an interval, every value of a choice (as override strings)."""
    o = OverridesParser.create().parse_overrides([f"k={value}"])[0]
    if o.is_interval_sweep():
        return [str(o.value().start), str(o.value().end)]
    return list(o.sweep_string_iterator())


def test_every_method_with_hyperparameters_has_a_search_space(tmp_path: Path) -> None:
    for method in METHODS:
        plan = validate(make_cfg(f"method={method}", "~tuned", *task_overrides("method", method),
                                 results_dir=tmp_path))
        has_params = bool(keyword_parameters(plan.method_fn.func))
        assert has_params == (method in SPACES), f"{method}: conf/tune/{method}.yaml"


@pytest.mark.parametrize("method", SPACES)
def test_search_space_lies_inside_the_typed_ranges(method: str, tmp_path: Path) -> None:
    """Every key is a method.* hyperparameter; each end of each range (each choice) passes the
    method's own annotations (the validation layer), so no trial can be rejected."""
    space = _space(method)
    assert space and all(k.startswith("method.") for k in space), method
    for key, value in space.items():
        for end in _ends(value):
            validate(make_cfg(f"method={method}", "~tuned", f"{key}={end}",
                              *task_overrides("method", method), results_dir=tmp_path))


def test_validation_split_replaces_the_test_set(tmp_path: Path) -> None:
    data = load_data(dict(make_cfg(*SYNTH, results_dir=tmp_path).dataset), tmp_path)
    view = hold_out_validation(data, 0.2)
    n = len(data.train_y)
    assert len(view.train_y) + len(view.test_y) == n
    for c in range(data.num_classes):  # stratified: 20% of every class
        assert int((view.test_y == c).sum()) == round(0.2 * int((data.train_y == c).sum()))
    rows = {tuple(r.flatten().tolist()) for r in view.test_x}
    assert not rows & {tuple(r.flatten().tolist()) for r in view.train_x}  # disjoint
    assert rows <= {tuple(r.flatten().tolist()) for r in data.train_x}     # from training
    again = hold_out_validation(data, 0.2)  # a fixed draw
    assert torch.equal(again.test_x, view.test_x)


def test_validation_comes_from_the_retain_set_after_the_forget_draw(tmp_path: Path) -> None:
    """A tuning job forgets exactly the test run's D_f (same images, same count): the
    validation split is a stratified share of D_r only, drawn after D_f."""
    for scenario in ("classwise", "random", "backdoor"):
        cfg = make_cfg("dataset=digits", f"scenario={scenario}", results_dir=tmp_path)
        plain, split = job_data(cfg)
        held, held_split = job_data({**cfg, "validation": 0.2})
        assert torch.equal(held.train_x[held_split.forget], plain.train_x[split.forget])
        assert torch.equal(held.train_y[held_split.forget], plain.train_y[split.forget])
        assert held_split.forget_classes == split.forget_classes
        if split.transform is not None:  # the poisoning follows its rows
            assert torch.equal(held_split.transform.apply(held).train_x[held_split.forget],
                               split.transform.apply(plain).train_x[split.forget])
        retain_y = plain.train_y[split.retain]
        for c in range(plain.num_classes):  # 20% of every class of D_r
            assert int((held.test_y == c).sum()) == round(0.2 * int((retain_y == c).sum()))
        assert len(held_split.retain) == len(split.retain) - len(held.test_y)
        assert torch.equal(held.train_x[held_split.retain],
                           plain.train_x[split.retain][~_rows_in(plain.train_x[split.retain],
                                                                 held.test_x)])


def _rows_in(rows: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """Which of ``rows`` also appear in ``pool``."""
    seen = {tuple(r.flatten().tolist()) for r in pool}
    return torch.tensor([tuple(r.flatten().tolist()) in seen for r in rows])


def test_validation_references_have_their_own_cache_keys(tmp_path: Path) -> None:
    cfg = make_cfg(*SYNTH, results_dir=tmp_path)
    tuned = make_cfg(*SYNTH, "validation=0.2", results_dir=tmp_path)
    plain, held = runner.prepare(cfg, Console(quiet=True)), runner.prepare(tuned,
                                                                          Console(quiet=True))
    for role in ("original", "retrain"):
        a = plain.refs.key_material(role, 0, plain.refs.stacks[role])
        b = held.refs.key_material(role, 0, held.refs.stacks[role])
        assert b == {**a, "validation": 0.2, **({"forget_sha256": b["forget_sha256"]}
                                                if "forget_sha256" in a else {})}
    assert len(held.env.data.train_y) < len(plain.env.data.train_y)


def _poisoned(data: Data) -> Data:
    """The test set made unusable: NaN images, shuffled labels."""
    g = torch.Generator().manual_seed(1)
    return Data(data.name, data.train_x, data.train_y, torch.full_like(data.test_x, math.nan),
                data.test_y[torch.randperm(len(data.test_y), generator=g)], data.num_classes)


def test_a_tuning_job_never_reads_the_test_set(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """With the validation split on, NaN test images and shuffled test labels change no
    number of the job (any read would make TA or MIA NaN or different)."""
    import unlearnbench.tasks.job_data as task  # where every task loads its data

    cfg = make_cfg(*SYNTH, "method=ga", "validation=0.2", "tune.max_cost=100",
                   results_dir=tmp_path / "a")
    clean = runner.run(cfg, console=Console(quiet=True))
    real = task.load_data
    monkeypatch.setattr(task, "load_data", lambda *a, **k: _poisoned(real(*a, **k)))
    poisoned = runner.run(make_cfg(*SYNTH, "method=ga", "validation=0.2",
                                   results_dir=tmp_path / "b"), console=Console(quiet=True))
    numbers = [*schema.SCORES, *schema.GAPS, schema.AVG_GAP]
    pd.testing.assert_frame_equal(clean[numbers], poisoned[numbers])
    assert math.isfinite(runner.objective(poisoned, cfg))
    # Without the validation split the same poison reaches the metrics: the check can fail.
    with pytest.raises(FloatingPointError, match="non-finite model outputs"):
        runner.run(make_cfg(*SYNTH, "method=ga", results_dir=tmp_path / "c"),
                   console=Console(quiet=True))


def test_cost_cap_makes_a_trial_infeasible(tmp_path: Path) -> None:
    row = {"status": "ok", "avg_gap": 1.5, "speedup": 5.0}  # costs 0.2 x the retrain
    assert schema.cost_ratio(row) == pytest.approx(0.2)
    assert schema.within_budget(row, 0.25) and not schema.within_budget(row, 0.1)
    assert not schema.within_budget({"speedup": ""}, 0.25)  # failed job: no cost known
    cfg = make_cfg(*SYNTH, "method=ft", "tune.max_cost=100", results_dir=tmp_path)
    df = runner.run(cfg, console=Console(quiet=True))
    unlearned = df[df.role == "unlearned"].iloc[0]
    assert runner.objective(df, cfg) == pytest.approx(unlearned.avg_gap)
    ratio = schema.cost_ratio(unlearned.to_dict())
    tight = make_cfg(*SYNTH, "method=ft", f"tune.max_cost={ratio / 2}", results_dir=tmp_path)
    assert runner.objective(df, tight) == math.inf


def test_a_trial_objective_is_the_mean_over_its_seeds() -> None:
    assert schema.mean_objective([1.0, 2.0, 4.5]) == pytest.approx(2.5)
    assert schema.mean_objective([0.5]) == 0.5
    assert schema.mean_objective([1.0, math.inf, 2.0]) == math.inf  # one seed infeasible
    assert schema.mean_objective([1.0, math.nan]) == math.inf
    assert schema.mean_objective([]) == math.inf


def test_a_tuning_trial_scores_tune_seeds_seeds(tmp_path: Path) -> None:
    """A trial (validation on) with tune.seeds=2 runs seed 1 into seeds/1/ and its own seed 0
    into the job folder; its objective is the mean of both rows' avg_gap; a rerun reuses the
    finished seed; the tuner's trial table reads the mean. A job without the validation split
    scores its own seed only."""
    from unlearnbench import cli

    out = tmp_path / "trial"
    cfg = make_cfg(*SYNTH, "method=ga", "validation=0.2", "tune.max_cost=100", "tune.seeds=2",
                   results_dir=tmp_path)
    assert runner.trial_seeds(cfg) == [0, 1]
    assert runner.trial_seeds(make_cfg(*SYNTH, "tune.seeds=2", results_dir=tmp_path)) == [0]
    value = cli.run_benchmark(cfg, out)
    rows = [pd.read_csv(d / "metrics.csv").query("role == 'unlearned'").iloc[0]
            for d in (out / "seeds" / "1", out)]
    assert [int(r.seed) for r in rows] == [1, 0]
    assert rows[0].avg_gap != rows[1].avg_gap  # two draws, not one row twice
    assert value == pytest.approx((rows[0].avg_gap + rows[1].avg_gap) / 2)
    # a rerun of the sweep scores the finished trial from its files by the same rule
    assert cli.stored_benchmark(cfg, out) == pytest.approx(value)
    tight = make_cfg(*SYNTH, "method=ga", "validation=0.2", "tune.max_cost=1e-9",
                     "tune.seeds=2", results_dir=tmp_path)
    assert cli.stored_benchmark(tight, out) == math.inf  # over the cap on every seed
    (cfg_row,) = tuning._job_rows(tmp_path)
    assert cfg_row[1]["seeds"] == 2 and cfg_row[1]["avg_gap"] == pytest.approx(value)
    stamp = (out / "seeds" / "1" / schema.DONE).stat().st_mtime_ns
    assert cli.run_benchmark(cfg, out) == pytest.approx(value)
    assert (out / "seeds" / "1" / schema.DONE).stat().st_mtime_ns == stamp


def test_tuned_file_is_used_and_an_override_wins(tmp_path: Path) -> None:
    """A file in conf/tuned/ named <dataset>_<model>_<scenario>_<method> sets the method's
    keys; the command line and `~tuned` still win; the console names the file."""
    name = "synthetic_mlp_random_ga"
    path = CONF_DIR / "tuned" / f"{name}.yaml"
    assert not path.exists()
    tuned = {"file": f"conf/tuned/{name}.yaml", "trials": 3, "objective": 1.0,
             "params": {"lr": 0.003, "epochs": 2}}
    path.write_text("# @package method\n" + yaml.safe_dump(
        {"lr": 0.003, "epochs": 2, "runner": {"tuned": tuned}}))
    try:
        base = (*SYNTH, "method=ga", "scenario=random")
        plan = validate(make_cfg(*base, results_dir=tmp_path))
        assert (plan.cfg["method"]["lr"], plan.cfg["method"]["epochs"]) == (0.003, 2)
        assert "tuned defaults from conf/tuned/synthetic_mlp_random_ga.yaml" in \
            runner.tuned_note(plan)
        over = validate(make_cfg(*base, "method.lr=0.01", results_dir=tmp_path))
        assert over.cfg["method"]["lr"] == 0.01 and "(overridden: lr)" in runner.tuned_note(over)
        off = validate(make_cfg(*base, "~tuned", results_dir=tmp_path))
        assert off.cfg["method"]["lr"] != 0.003 and "plain defaults" in runner.tuned_note(off)
        other = validate(make_cfg(*SYNTH, "method=ga", results_dir=tmp_path))  # classwise
        assert other.runner.tuned is None
    finally:
        path.unlink()


def _setting(stem: str) -> list[str]:
    """`fashion_mnist_mlp_random_l1_sparse` -> the overrides of that dataset, model, ..."""
    out = []
    for group in ("dataset", "model", "scenario"):
        option = next(o for o in sorted((p.stem for p in (CONF_DIR / group).glob("*.yaml")),
                                        key=len, reverse=True) if stem.startswith(o + "_"))
        out.append(f"{group}={option}")
        stem = stem.removeprefix(option + "_")
    return [*out, f"method={stem}"]


@pytest.mark.parametrize("path", TUNED, ids=lambda p: p.stem)
def test_committed_tuned_file_matches_its_trial_table(path: Path, tmp_path: Path) -> None:
    """Each tuned file sets what its own record says, was selected from its CSV beside it (the
    feasible trial with the smallest validation avg_gap), and lies in its search space."""
    cfg = make_cfg(*_setting(path.stem), results_dir=tmp_path)
    plan = validate(cfg)
    tuned = plan.runner.tuned
    assert tuned is not None and tuned["file"] == f"conf/tuned/{path.name}"
    table = pd.read_csv(path.with_suffix(".csv"))
    complete = table[table.state == "COMPLETE"]
    assert len(complete) == tuned["trials"] and complete.feasible.sum() == tuned["feasible"]
    feasible = complete[complete.feasible]
    if not len(feasible):
        assert "params" not in tuned
        return
    best = feasible.sort_values(["val_avg_gap", "trial"]).iloc[0]
    assert int(best.trial) == tuned["trial"] and bool(best.selected)
    assert best.val_avg_gap == pytest.approx(tuned["objective"])
    for key, value in tuned["params"].items():
        assert plan.cfg["method"][key] == value
        assert str(best[key]) == str(value) or float(best[key]) == pytest.approx(value)


# -- the tuner as a user runs it

def _trial_dirs(folder: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in folder.glob(f"*/{schema.DONE}")}


def test_tune_command_runs_end_to_end_and_resumes_after_a_kill(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The README's command on digits with a 4-trial budget: SIGKILL after two finished
    trials, the same command again runs only the missing ones, then writes the tuned file and
    the trial table."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[tune]'")
    results, out = tmp_path / "results", tmp_path / "tuned"
    command = [*TUNE, "method=ft", "dataset=digits", "scenario=classwise", "tune.trials=4",
               f"results_dir={results}", f"tune.tuned_dir={out}"]
    study = results / "tuning" / "digits_mlp_classwise_ft"
    monkeypatch.chdir(ROOT)  # the trial processes import this checkout
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(_trial_dirs(study)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # the tuner; its trial process dies with it
    proc.wait(timeout=30)
    killed = _trial_dirs(study)
    assert 2 <= len(killed) < 4 and not out.exists()
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    done = int(rerun.stdout.split("digits_mlp_classwise_ft: ")[1].split(" of 4")[0])
    assert 1 <= done <= len(killed)  # the trials told to Optuna before the kill
    assert f"running {4 - done}" in rerun.stdout
    table = pd.read_csv(out / "digits_mlp_classwise_ft.csv")
    assert (table.state == "COMPLETE").sum() == 4
    assert {"epochs", "lr", "val_avg_gap", "cost_ratio", "feasible", "selected"} <= \
        set(table.columns)
    after = _trial_dirs(study)
    assert all(after[k] == v for k, v in killed.items())  # finished trials kept
    feasible = table[table.feasible]  # each over tune.seeds = 3 seeds, objective their mean
    for _, trial in feasible.iterrows():
        by_seed = [float(v) for v in trial.val_avg_gap_by_seed.split()]
        assert trial.seeds == 3 and len(by_seed) == 3
        assert trial.objective == pytest.approx(sum(by_seed) / 3, abs=1e-3)
    tuned = yaml.safe_load((out / "digits_mlp_classwise_ft.yaml").read_text())
    selected = table[table.selected].iloc[0]
    assert tuned["runner"]["tuned"]["trial"] == selected.trial
    assert tuned["lr"] == pytest.approx(selected.lr) and tuned["epochs"] == selected.epochs
    # A finished study reruns nothing: it only writes the same files again.
    text = (out / "digits_mlp_classwise_ft.yaml").read_text()
    assert tuning.main(command[len(TUNE):]) == 0
    assert "running" not in capsys.readouterr().out
    assert (out / "digits_mlp_classwise_ft.yaml").read_text() == text


POISON = textwrap.dedent('''
    """A test plug-in: the synthetic dataset, its test set optionally poisoned."""
    from dataclasses import replace

    import torch

    from unlearnbench.data import synthetic


    def data(data_root, num_classes, *, channels=1, size=8, train_per_class=100,
             test_per_class=40, noise=1.0, split_seed=0, poison=False):
        d = synthetic(data_root, num_classes, channels=channels, size=size,
                      train_per_class=train_per_class, test_per_class=test_per_class,
                      noise=noise, split_seed=split_seed)
        if not poison:
            return d
        g = torch.Generator().manual_seed(1)
        return replace(d, test_x=torch.full_like(d.test_x, float("nan")),
                       test_y=d.test_y[torch.randperm(len(d.test_y), generator=g)])
''')


def test_tuner_never_reads_the_test_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    """The same study on data whose test set is NaN images with shuffled labels selects the
    same trial with the same validation values, trial by trial."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[tune]'")
    (tmp_path / "poison_plugin.py").write_text(POISON)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(tmp_path)]))
    monkeypatch.chdir(ROOT)
    tables = []
    for poison in ("false", "true"):
        out = tmp_path / f"tuned_{poison}"
        assert tuning.main(["method=ft", "dataset=synthetic", "+dataset.poison=" + poison,
                            "dataset._target_=poison_plugin.data",
                            "allow_targets=[poison_plugin.]", "train.epochs=3",
                            "tune.trials=3", "tune.max_cost=1e9",
                            f"results_dir={tmp_path / poison}",
                            f"tune.tuned_dir={out}"]) == 0, capsys.readouterr().err[-2000:]
        tables.append(pd.read_csv(out / "synthetic_mlp_classwise_ft.csv"))
    clean, poisoned = tables
    shown = ["trial", "epochs", "lr", "val_avg_gap", "val_UA", "val_RA", "val_TA", "val_MIA",
             "objective", "selected"]
    assert clean.val_avg_gap.map(math.isfinite).all()
    pd.testing.assert_frame_equal(clean[shown], poisoned[shown])


@pytest.mark.parametrize(("args", "key"), [
    (["tune.trials=0"], "tune.trials=0"),
    (["tune.max_cost=-1"], "tune.max_cost=-1"),
    (["seed=0,1"], "seed=0,1"),
    (["validation=0.3"], "validation=0.3"),
    (["method=nope"], "method=nope"),
    (["method=retrain"], "nothing to tune"),
])
def test_bad_tune_command_is_one_line(args: list[str], key: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    assert tuning.main(["method=ga", f"results_dir={tmp_path}", *args]) == 2
    err = capsys.readouterr().err
    assert key in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "tuning").exists()


def test_tune_command_and_extra_are_declared() -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["unlearnbench-tune"] == "unlearnbench.tuning:main"
    extras = project["optional-dependencies"]
    assert any(d.startswith("hydra-optuna-sweeper") for d in extras["tune"])
    assert any("tune" in d for d in extras["dev"])  # the test suite needs it


def test_cpu_budget_stops_a_step_that_costs_too_much() -> None:
    from unlearnbench.training import OverBudget, cpu_budget

    def spin(seconds: float) -> None:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    with pytest.raises(OverBudget):
        with cpu_budget(0.05):
            spin(2.0)
    with cpu_budget(None):
        spin(0.05)
    with cpu_budget(5.0):  # under the budget: nothing happens, the timer is cleared
        spin(0.05)
    spin(0.1)


def test_a_budget_stop_cannot_leave_autograd_off() -> None:
    """The stop is a signal: it can land inside a `no_grad` entry after autograd went off.
    The budget restores the grad mode it started with, or every later job of the sweep's
    process crashes; a block entered under `no_grad` keeps it."""
    from unlearnbench.training import OverBudget, cpu_budget

    with pytest.raises(OverBudget):
        with cpu_budget(60.0):
            torch.set_grad_enabled(False)  # what an interrupted `with torch.no_grad():` leaves
            raise OverBudget("over its CPU budget")
    assert torch.is_grad_enabled()
    with torch.no_grad():
        with cpu_budget(60.0):
            pass
        assert not torch.is_grad_enabled()


def test_tuning_trial_over_max_cost_stops_as_infeasible(tmp_path: Path) -> None:
    cfg = make_cfg(*SYNTH, "method=ft", "method.epochs=50", "validation=0.2",
                   "tune.stop_at_max_cost=true", results_dir=tmp_path)
    df = runner.run(cfg, console=Console(quiet=True))
    row = df[df.role == "unlearned"].iloc[0]
    assert row.status == "failed" and row.reason.startswith("OverBudget")
    assert runner.objective(df, cfg) == math.inf


def test_a_study_runs_one_protocol(tmp_path: Path) -> None:
    """Resuming with other settings (or after the method's code changed) is one clear error;
    only the trial count may grow."""
    args = ["method=ga", "dataset=digits", f"results_dir={tmp_path}"]
    (study,), _ = tuning.plan_studies(args)
    tuning._check_protocol(study)
    (more,), _ = tuning.plan_studies([*args, "tune.trials=50"])
    tuning._check_protocol(more)  # a bigger budget extends the same study
    (other,), _ = tuning.plan_studies([*args, "tune.max_cost=0.5"])
    with pytest.raises(tuning.UserError, match="differs in: max_cost"):
        tuning._check_protocol(other)
    changed = tuning.Study(**{**study.__dict__, "code": "0" * 64})
    with pytest.raises(tuning.UserError, match="method_code"):
        tuning._check_protocol(changed)


def test_trials_run_only_the_metrics_the_objective_reads(tmp_path: Path) -> None:
    """avg_gap needs accuracy and MIA; the slow extras (model inversion, relearn, ...) are off
    in trial jobs, and a metric the user switched off stays off."""
    args = ["method=ga", "dataset=digits", f"results_dir={tmp_path}"]
    (study,), _ = tuning.plan_studies(args)
    line = tuning.command(study, 3, 0)
    assert {"eval.metrics.inversion=null", "eval.metrics.relearn=null"} <= set(line)
    assert not any(a.startswith(("eval.metrics.accuracy", "eval.metrics.mia")) for a in line)
    (fewer,), _ = tuning.plan_studies([*args, "eval.metrics.zrf=null"])
    assert "zrf" not in fewer.unread and "inversion" in fewer.unread


def test_a_glob_skips_settings_a_method_cannot_run_and_a_single_one_is_refused() -> None:
    """`method=glob(*) scenario=classwise,random` (scripts/tune_all.py) skips GKT/UNSIR on
    random and the task=inpainting methods on classification with a note, instead of failing
    their trials (which stopped the whole run); asking for one such setting is one line."""
    studies, notes = tuning.plan_studies(["method=glob(*)", "dataset=digits",
                                          "scenario=classwise,random"])
    names = {s.name for s in studies}
    assert "digits_mlp_classwise_gkt" in names and "digits_mlp_random_gkt" not in names
    assert not any("i2i_encoder" in n for n in names)
    assert "skipped gkt on scenario=random: not applicable (it forgets whole classes; " \
           "allowed: classwise)" in notes
    with pytest.raises(tuning.UserError, match="allowed: classwise"):
        tuning.plan_studies(["method=unsir", "scenario=random"])

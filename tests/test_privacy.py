"""The per-example privacy protocol (`unlearnbench-privacy`) on tiny synthetic data: its files,
the cached ensembles reused by a second method, vectorised methods equal to their per-member
form, the leaderboard's privacy section, and bad input."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from rich.console import Console

from unlearnbench import cli, privacy
from unlearnbench.errors import ConfigError
from unlearnbench.producers.ensemble import ORIGINAL_ENSEMBLE, member_seeds
from unlearnbench.registry import resolve
from unlearnbench.report import leaderboard
from unlearnbench.runner import prepare
from unlearnbench.validation import ensemble_form, validate

from .conftest import CONF_DIR, make_cfg

ROOT = Path(__file__).resolve().parents[1]
# 200 training examples, 10 to forget, 8 models a side: seconds
TINY = ("dataset=synthetic", "dataset.train_per_class=50", "dataset.test_per_class=10",
        "train.epochs=2", "scenario.fraction=0.05", "n_models=8")


def privacy_cfg(tmp: Path, *overrides: str):
    return make_cfg(*TINY, *overrides, results_dir=tmp, config_name="privacy")


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200), out


def test_protocol_files_scores_and_cached_ensembles_reused(tmp_path: Path) -> None:
    console, log = _console()
    job = tmp_path / "ft_job"
    df = privacy.run(privacy_cfg(tmp_path, "method=ft"), job, console)
    for name in ("privacy.csv", "per_example.csv", "epsilon_hist.png", "config.yaml",
                 "timings.json", "forget_indices.npy", "done"):
        assert (job / name).is_file(), name
    assert "original_ensemble: trained" in log.getvalue()
    assert "retrain_ensemble: trained" in log.getvalue()
    # every comparison, both sizes for the method and the original, the ceiling at N/2
    sizes = df.groupby("comparison").models_per_side.unique().map(sorted).to_dict()
    assert sizes == {"ceiling": [4], "original": [4, 8], "unlearned": [4, 8]}
    assert (df.status == "ok").all() and (df.unlearn == "vectorised").all()
    scores = set(zip(df.score, df.split, strict=True))
    assert {("forget_score_F", "forget"), ("final_score", "all"), ("ulira_acc", "forget"),
            ("klom", "forget"), ("klom", "retain"), ("klom", "test")} <= scores
    value = df.set_index(["comparison", "models_per_side", "score", "split"]).value
    for key in [("ceiling", 4), ("unlearned", 8), ("original", 4)]:
        assert 0 <= value[(*key, "forget_score_F", "forget")] <= 1
        assert 0 <= value[(*key, "ulira_acc", "forget")] <= 1
    per_example = pd.read_csv(job / "per_example.csv")
    assert len(per_example) == 5 * 10 and per_example.epsilon.ge(0).all()
    pd.testing.assert_frame_equal(pd.read_csv(job / "privacy.csv").drop(columns="reason"),
                                  df.drop(columns="reason"))
    # a rerun of a sweep scores this finished job from its privacy.csv as the run scored it
    assert math.isfinite(privacy.objective(df))
    assert cli.stored_privacy(privacy_cfg(tmp_path, "method=ft"), job) \
        == pytest.approx(privacy.objective(df))

    # A second method: both ensembles are cache hits; the per-member path for a method
    # without a vectorised form (here FT with privacy.vectorised=false).
    console, log = _console()
    again = privacy.run(privacy_cfg(tmp_path, "method=ft", "privacy.vectorised=false"),
                        tmp_path / "ft_loop", console)
    assert "original_ensemble: cache hit" in log.getvalue()
    assert "retrain_ensemble: cache hit" in log.getvalue()
    assert (again.unlearn == "per member").all()
    # the original's and the ceiling's scores are memoised beside the ensembles
    assert len(list((tmp_path / "cache").glob("memo-*.json"))) == 3
    # the same originals and retrains: the same original and ceiling scores
    same = again.set_index(["comparison", "models_per_side", "score", "split"]).value
    for key in [("ceiling", 4, "forget_score_F", "forget"), ("original", 8, "klom", "retain")]:
        assert same[key] == value[key]

    # the leaderboard reads both jobs into its privacy section
    out = tmp_path / "board"
    leaderboard.build([tmp_path], out, [str(tmp_path)])
    text = (out / "LEADERBOARD.md").read_text()
    assert "# Privacy" in text and "ceiling (retrain vs retrain)" in text
    assert "original (no unlearning)" in text and "| ft " in text
    tidy = pd.read_csv(out / "privacy.csv")
    assert set(tidy.row) == {"ceiling (retrain vs retrain)", "ft", "original (no unlearning)"}


def _vectorised_methods() -> list[str]:
    names = []
    for path in sorted((CONF_DIR / "method").glob("*.yaml")):
        fn = resolve(OmegaConf.load(path)["_target_"], "method", "method._target_")
        if getattr(sys.modules[fn.__module__], "unlearn_ensemble", None) is not None:
            names.append(path.stem)
    return names


def test_ft_ga_offer_a_vectorised_form() -> None:
    # RL follows SalUn's loop (forget batches first, labels redrawn per batch), which the
    # stacked trainer does not express: it runs per member.
    assert {"ft", "ga"} <= set(_vectorised_methods())


@pytest.mark.parametrize("method", _vectorised_methods())
def test_vectorised_form_equals_unlearn_per_member(tmp_path: Path, method: str) -> None:
    """Member k of ``unlearn_ensemble`` is ``unlearn`` of original k with member k's seed
    (own data order, own random labels), to float tolerance; with larger steps than the
    YAML's so that the methods move the weights."""
    cfg = privacy_cfg(tmp_path, f"method={method}", "method.epochs=2", "method.lr=0.05")
    job = prepare(cfg, _console()[0])
    originals = job.refs.get(ORIGINAL_ENSEMBLE)
    assert originals.artifacts["seeds"] == member_seeds(ORIGINAL_ENSEMBLE, 0, 8)
    at_once = privacy.unlearn_members(job.plan, job.refs, originals)
    job.plan.method_ensemble_fn = None
    one_by_one = privacy.unlearn_members(job.plan, job.refs, originals)
    assert (at_once.how, one_by_one.how) == ("vectorised", "per member")
    assert at_once.ensemble is not None and one_by_one.ensemble is not None, at_once.reason
    moved = False
    for name, stacked in at_once.ensemble.state_dict().items():
        torch.testing.assert_close(stacked, one_by_one.ensemble.state_dict()[name],
                                   rtol=1e-4, atol=1e-5, msg=name)
        moved |= not torch.allclose(stacked, originals.model.state_dict()[name])
    assert moved


def test_every_vectorised_form_takes_the_hyperparameters_of_unlearn(tmp_path: Path) -> None:
    import inspect

    from unlearnbench.params import keyword_parameters

    for method in _vectorised_methods():
        plan = validate(privacy_cfg(tmp_path, f"method={method}"))
        vectorised = ensemble_form(plan.method_fn)
        assert vectorised is not None
        alone = keyword_parameters(plan.method_fn.func)
        at_once = keyword_parameters(vectorised.func)
        assert {n: p.annotation for n, p in alone.items()} == \
            {n: p.annotation for n, p in at_once.items()}, method
        assert list(inspect.signature(vectorised.func).parameters)[:2] == ["models", "ctx"]


BAD = [
    (("n_models=4",), "n_models=4", ">= 8"),
    (("n_models=8.5",), "n_models=8.5", ">= 8"),
    (("privacy.klom_mode=exact",), "privacy.klom_mode=exact", "reference"),
    (("privacy.klom_bins=1",), "privacy.klom_bins=1", "[2, 10000]"),
    (("privacy.delta=0",), "privacy.delta=0", "(0, 1)"),
    (("privacy.vectorised=sometimes",), "privacy.vectorised=sometimes", "true or false"),
    (("privacy.shadow_fraction=0.1",), "privacy.shadow_fraction=0.1", ">= 2 shadow"),
    (("+privacy.n_models=16",), "privacy.n_models=16", "top-level key n_models"),
    (("+privacy.bins=3",), "privacy.bins=3", "klom_bins"),
    (("sparsity=omp",), "sparsity=omp", "none"),
    (("method=retrain",), "method=retrain", "ceiling"),
    (("train.augment=true",), "train.augment=true", "false"),
]


@pytest.mark.parametrize(("overrides", "names", "allowed"), BAD,
                         ids=[" ".join(o) for o, _, _ in BAD])
def test_bad_privacy_keys_are_one_clear_error(tmp_path: Path, overrides, names: str,
                                               allowed: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(privacy_cfg(tmp_path, *overrides))
    message = str(err.value)
    assert names in message and allowed in message and "\n" not in message


def test_benchmark_config_with_a_privacy_key_is_refused(tmp_path: Path) -> None:
    cfg = make_cfg("dataset=synthetic", "+n_models=8", results_dir=tmp_path)
    with pytest.raises(ConfigError, match="privacy"):
        validate(cfg)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`unlearnbench-privacy` as installed runs ``cli.privacy_main``; run from the repository
    root so that this checkout's package is the one imported."""
    return subprocess.run(
        [sys.executable, "-c", "from unlearnbench.cli import privacy_main; privacy_main()",
         f"results_dir={tmp_path / 'results'}", "progress=false", "device=cpu", *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_console_script_run_folder_and_bad_input(tmp_path: Path) -> None:
    run_dir = tmp_path / "my_run"
    proc = _cli(tmp_path, *TINY, "method=ga", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "done").is_file() and (run_dir / "privacy.csv").is_file()
    assert "ceiling" in proc.stdout and "ga (vectorised)" in proc.stdout
    small = [a for a in TINY if not a.startswith("n_models=")]
    bad = _cli(tmp_path, *small, "n_models=3", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unlearnbench-privacy: error: n_models=3")
    assert not (tmp_path / "bad").exists()

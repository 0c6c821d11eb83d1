"""task=inpainting end to end through run(cfg): the roles' rows with the generative columns and
their gaps to the retrain, the grid PNG, the cache (a second job trains nothing), and options of
one task refused with the other by the validation layer."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from unlearnbench import schema
from unlearnbench.errors import ConfigError
from unlearnbench.runner import prepare, run
from unlearnbench.validation import validate

from .conftest import TINY_INPAINTING, TINY_UNLEARNING, make_cfg


def _run(results: Path, out: Path, *overrides: str) -> tuple[pd.DataFrame, str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=250)
    method = () if "method=retrain" in overrides else TINY_UNLEARNING
    df = run(make_cfg(*TINY_INPAINTING, *method, *overrides, results_dir=results), out, console)
    return df, buffer.getvalue()


def test_inpainting_job_rows_gaps_and_grid(tmp_path: Path) -> None:
    df, text = _run(tmp_path / "results", tmp_path / "job", "scenario.forget_classes=[0,1]")
    assert list(df.role) == ["original", "retrain", "unlearned"]
    assert (df.status == "ok").all() and set(df.method) == {"i2i_encoder"}
    assert list(df.columns[: len(schema.GEN_COLUMNS)]) == schema.GEN_COLUMNS
    rows = df.set_index("role")
    for metric in schema.GEN_GAP_METRICS:
        assert rows.loc["retrain", f"gap_{metric}"] == 0
        for role in ("original", "unlearned"):
            gap = abs(rows.loc[role, metric] - rows.loc["retrain", metric])
            assert rows.loc[role, f"gap_{metric}"] == pytest.approx(gap)
    for role in ("original", "unlearned"):
        expected = 100 * sum(rows.loc[role, f"gap_{m}"] for m in schema.SUMMARY_METRICS) / 3
        assert rows.loc[role, "summary"] == pytest.approx(expected)
    assert math.isfinite(rows.loc["unlearned", "RTE_s"]) and rows.loc["unlearned", "steps"] > 0
    for split in ("retain", "forget"):  # the forget split holds classes 0 and 1 only
        assert rows.loc["original", f"{split}_FD"] >= 0
        assert 0 < rows.loc["original", f"{split}_IS"] <= 10
    job = tmp_path / "job"
    assert (job / "inpainting_grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (job / "done").is_file()
    written = pd.read_csv(job / "metrics.csv")
    assert list(written.role) == ["original", "retrain", "unlearned"]
    assert "forget_recognised" in text and "summary" in text  # the console table's columns


def test_second_job_reuses_original_retrain_and_judge(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _, first = _run(results, tmp_path / "a")
    assert first.count("trained in") >= 3 and "cached as" in first
    _, second = _run(results, tmp_path / "b", "method=max_loss")
    for role in ("original", "retrain", "judge"):
        assert f"{role}: cache hit" in second
    assert "cached as" not in second  # nothing trained


def test_task_keys_reach_the_metric_memo_not_the_weights(tmp_path: Path) -> None:
    """mode and box change only the evaluation: the generators are reused, the metrics not."""
    results = tmp_path / "results"
    inpaint, _ = _run(results, tmp_path / "a", "method=retrain")
    outpaint, text = _run(results, tmp_path / "b", "method=retrain", "task.mode=outpaint")
    assert "original: cache hit" in text and "retrain: cache hit" in text
    assert inpaint.retain_FD.iloc[0] != outpaint.retain_FD.iloc[0]


@pytest.mark.parametrize(("overrides", "key", "allowed"), [
    (("task=inpainting", "method=sisa"), "method", "i2i_encoder, max_loss, noisy_label"),
    (("task=inpainting", "model=mlp"), "model", "ddpm, mae, vqgan"),
    (("task=classification", "method=i2i_encoder"), "method", "ft, ga"),
    (("task=classification", "model=ddpm"), "model", "cnn, mlp"),
    (("task=inpainting", "sparsity=omp"), "sparsity", "none"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_options_of_the_other_task_are_refused(tmp_path: Path, overrides: tuple[str, ...],
                                               key: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(*overrides, results_dir=tmp_path))
    assert err.value.key == key and allowed in err.value.allowed
    assert not (tmp_path / "cache").exists()


def test_a_sample_scenario_is_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        prepare(make_cfg(*TINY_INPAINTING, "scenario=random", results_dir=tmp_path),
                Console(quiet=True))
    assert err.value.key == "scenario" and "classwise" in err.value.allowed
    assert not (tmp_path / "cache").exists()


def test_leaderboard_over_a_classification_and_an_inpainting_job(tmp_path: Path) -> None:
    """Both jobs get their table; the classification one is ranked by avg_gap as before and
    shows no generative column, the inpainting one (the original included) is ranked by its
    summary gap; the sweep summary ranks the inpainting rows the same way."""
    from unlearnbench.report import leaderboard

    from .conftest import SYNTH

    run(make_cfg(*SYNTH, results_dir=tmp_path / "results"), tmp_path / "jobs" / "cls",
        Console(quiet=True))
    _run(tmp_path / "results", tmp_path / "jobs" / "gen")
    tables = leaderboard.build([tmp_path / "jobs"], tmp_path / "board", [str(tmp_path)])
    by_model = {t.model: t for t in tables}
    assert set(by_model) == {"mlp", "mae"}
    classifier = leaderboard.frame(by_model["mlp"])
    assert "avg_gap ↓" in classifier.columns and "ft" in set(classifier.method)
    assert not {"retain_FD", "summary ↓"} & set(classifier.columns)
    assert "i2i_encoder" in {r["method"] for r in by_model["mae"].rows}
    generative = leaderboard.frame(by_model["mae"])
    assert {"summary ↓", "retain_FD", "forget_cos"} <= set(generative.columns)
    ranked_rows = [r for r in by_model["mae"].rows if r["rank"].isdigit()]
    assert [r["label"] for r in ranked_rows] == ["i2i_encoder", leaderboard.ORIGINAL] or \
        [r["label"] for r in ranked_rows] == [leaderboard.ORIGINAL, "i2i_encoder"]
    gaps = [r["summary"][0] for r in ranked_rows]
    assert all(math.isfinite(g) for g in gaps) and gaps == sorted(gaps)
    assert "ranked by summary" in (tmp_path / "board" / "LEADERBOARD.md").read_text()

    from unlearnbench.report.tables import collect, ranked

    summary = ranked(collect(tmp_path / "jobs" / "gen")[0])
    assert list(summary["rank"]) == ["1", "2"]
    assert summary["summary"].is_monotonic_increasing

"""AIN, ZRF, MI_success and the reference-relative columns on hand-computed cases; the judge,
the job folder's figures and learning curve; AllCNN and mnist_5k."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console
from torch import nn

from unlearnbench.errors import ConfigError
from unlearnbench.metrics.anamnesis import median_censored, steps_to_relearn
from unlearnbench.metrics.inversion import total_variation
from unlearnbench.metrics.zrf import js_bits, js_reference
from unlearnbench.models import AllCNN, feature_blocks
from unlearnbench.runner import run
from unlearnbench.schema import RelativeColumn, relative_columns
from unlearnbench.validation import validate

from .conftest import SYNTH, make_cfg

AIN = {"AIN": RelativeColumn(of="relearn_steps", op="ratio")}


def test_ain_is_a_ratio_to_the_retrain_and_keeps_censoring() -> None:
    ref = {"relearn_steps": 20.0, "relearn_steps_censored": 0.0}
    assert relative_columns({"relearn_steps": 5.0, "relearn_steps_censored": 0.0}, ref, AIN) \
        == {"AIN": 0.25, "AIN_censored": 0.0}
    # the unlearned model never relearned within the cap: AIN is a lower bound, flagged
    capped = relative_columns({"relearn_steps": 250.0, "relearn_steps_censored": 1.0}, ref, AIN)
    assert capped == {"AIN": 12.5, "AIN_censored": 1.0}
    assert relative_columns(ref, ref, AIN)["AIN"] == 1.0
    assert math.isnan(relative_columns({"relearn_steps": math.nan}, ref, AIN)["AIN"])
    diff = relative_columns({"x": 3.0}, {"x": 5.0}, {"d": RelativeColumn("x", "difference")})
    assert diff == {"d": -2.0}


def test_relearn_steps_until_the_check_holds_or_censored() -> None:
    model = nn.Linear(2, 2)
    x, y = torch.randn(10, 2), torch.arange(10) % 2
    calls = []

    def after_three(m: nn.Module) -> bool:
        calls.append(1)
        return len(calls) >= 3

    assert steps_to_relearn(model, x, y, after_three, lr=1e-3, batch_size=4, eval_every=2,
                            max_steps=100, seed=0) == (6, False)  # checked at steps 2, 4, 6
    assert steps_to_relearn(model, x, y, lambda m: False, lr=1e-3, batch_size=4,
                            eval_every=1, max_steps=7, seed=0) == (7, True)
    assert median_censored([3, 250, 5], [False, True, False]) == (5.0, False)
    assert median_censored([3, 250, 250], [False, True, True]) == (250.0, True)
    assert median_censored([4, 250], [False, True]) == (127.0, True)  # a bound enters it


def test_zrf_formulas_by_hand() -> None:
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    q = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    # fixed: JS in bits per sample: 0 for equal rows, 1 for disjoint ones -> mean 0.5
    assert math.isclose(js_bits(p, q), 0.5, rel_tol=1e-6)
    assert math.isclose(js_bits(p, p), 0.0, abs_tol=1e-9)
    # reference: ½·mean(m (ln m − ln p)) + ½·mean(m (ln m − ln q)) over the 4 entries; only
    # the disjoint row counts (m = ½, ½), and both halves are alike:
    # ½ ln(½/1) + ½ ln(½/1e-30) per half (p clamped at 1e-30)
    half = 0.5 * math.log(0.5) + 0.5 * math.log(0.5 / 1e-30)
    assert math.isclose(js_reference(p, q), half / 4, rel_tol=1e-5)


def test_total_variation_by_hand() -> None:
    x = torch.tensor([[[[0.0, 1.0], [3.0, 1.0]]]])
    # vertical differences 3, 0 -> mean 4.5; horizontal 1, -2 -> mean 2.5
    assert math.isclose(float(total_variation(x)), 7.0, rel_tol=1e-6)


@pytest.mark.parametrize("size", [8, 28, 32])
def test_allcnn_works_from_8_to_32_pixels_and_scales_its_width(size: int) -> None:
    model = AllCNN((1, size, size), 10, width=0.25)
    assert model(torch.randn(2, 1, size, size)).shape == (2, 10)
    assert model.conv1[0].out_channels == 24 and model.conv8[0].out_channels == 48
    assert feature_blocks(model) == tuple(f"conv{i}" for i in range(1, 9))
    full = AllCNN((3, size, size), 10)
    assert full.conv1[0].out_channels == 96 and full.conv4[0].out_channels == 192


def test_judge_must_be_another_architecture(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="eval.judge.model"):
        validate(make_cfg("model=cnn", "eval.judge.model.channels=[32,64]",
                          "eval.judge.model.name=cnn", results_dir=tmp_path))
    with pytest.raises(ConfigError, match="eval.metrics.anamnesis.relative.AIN.op"):
        validate(make_cfg("eval.metrics.anamnesis.relative.AIN.op=product",
                          results_dir=tmp_path))


@pytest.fixture(scope="module")
def gkt_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path, Path]:
    results = tmp_path_factory.mktemp("gkt")
    out = results / "job"
    cfg = make_cfg(*SYNTH, "method=gkt", "method.pseudo_batches=4", "method.log_every=2",
                   "method.batch_size=32", "method.generator_channels=8",
                   "eval.metrics.anamnesis.max_steps=30", results_dir=results)
    return run(cfg, out, Console(quiet=True)), out, results


def test_job_rows_carry_ain_zrf_mi_and_access(gkt_job) -> None:
    df, out, _ = gkt_job
    rows = df.set_index("role")
    assert (rows.access == "zero_shot").all()
    assert rows.loc["retrain", "AIN"] == 1.0 and rows.loc["retrain", "AIN_censored"] in (0, 1)
    for role in ("original", "retrain", "unlearned"):
        assert 0 <= rows.loc[role, "MI_success"] <= 100
        assert rows.loc[role, "ZRF"] <= 1
        assert rows.loc[role, "relearn_steps"] >= 1
    # the original relearns at once, the retrain must learn the class from scratch
    assert rows.loc["original", "AIN"] < 1
    on_disk = pd.read_csv(out / "metrics.csv")
    assert {"AIN", "AIN_censored", "ZRF", "MI_success", "access"} <= set(on_disk.columns)


def test_job_folder_holds_the_inversion_grid_and_the_learning_curve(gkt_job) -> None:
    _, out, _ = gkt_job
    assert (out / "mi_inversions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curve = pd.read_csv(out / "checkpoints.csv")
    assert curve.step.tolist() == [0, 2, 4]
    assert {"Df_acc", "Dr_acc", "TA", "FTA", "gate_pass_rate"} <= set(curve.columns)
    assert curve.Df_acc.between(0, 100).all() and curve.Dr_acc.between(0, 100).all()


def test_the_judge_is_cached_and_shared(gkt_job) -> None:
    _, _, results = gkt_job
    console = Console(record=True, width=200)
    run(make_cfg(*SYNTH, "method=ft", "scenario.forget_classes=[1]", "seed=1",
                 "eval.metrics.anamnesis=null", results_dir=results), None, console)
    assert "judge: cache hit" in console.export_text()


def test_metrics_switch_off(tmp_path: Path) -> None:
    df = run(make_cfg(*SYNTH, "method=ft", "eval.metrics.anamnesis=null", "eval.metrics.zrf=null",
                      "eval.metrics.inversion=null", results_dir=tmp_path), None,
             Console(quiet=True))
    assert not {"AIN", "ZRF", "MI_success", "relearn_steps"} & set(df.columns)
    assert np.isfinite(df.UA).all()

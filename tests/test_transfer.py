"""Transfer learning after unlearning (`unlearnbench-transfer`): resizing, features, the
probe and the fine-tune, the class influence on a hand-computed case, the pipeline on tiny
data, and bad input as one line before anything is trained or written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from rich.console import Console

from unlearnbench.data import Data
from unlearnbench.errors import ConfigError
from unlearnbench.models import MLP, SmallCNN
from unlearnbench.params import unchecked_fields
from unlearnbench.preflight import DataCache
from unlearnbench.training import Recipe
from unlearnbench.transfer import (
    InfluenceSettings,
    TransferSettings,
    class_influence,
    class_subsets,
    classifier,
    features,
    fine_tune,
    fit_to_source,
    linear_probe,
    most_harmful,
)
from unlearnbench.transfer_run import check_transfer_job, run_transfer, stored_transfer

from .conftest import CONF_DIR

ROOT = CONF_DIR.parent
# A tiny source job (synthetic, 3 epochs) and short probe/fine-tune on digits.
TINY = ("dataset=synthetic", "train.epochs=3", "transfer.probe.epochs=3",
        "transfer.finetune.epochs=1")


def transfer_cfg(*overrides: str, results_dir: Path) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("transfer", overrides=[f"results_dir={results_dir}", "progress=false",
                                              "device=cpu", *overrides])


def _images(n: int, shape: tuple[int, int, int], classes: int, seed: int = 0) -> Data:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    means = torch.randn(classes, *shape, generator=g) * 2
    x = means[y] + torch.randn(n, *shape, generator=g)
    return Data("toy", x, y, x.clone(), y.clone(), classes)


def test_transfer_settings_are_typed() -> None:
    for cls in (TransferSettings, InfluenceSettings, Recipe):
        assert not unchecked_fields(cls), cls


def test_target_is_resized_to_the_source_shape() -> None:
    target = _images(6, (1, 8, 8), 3)
    to_rgb = fit_to_source(target, (3, 16, 16))
    assert to_rgb.train_x.shape == (6, 3, 16, 16) and to_rgb.test_x.shape == (6, 3, 16, 16)
    assert torch.equal(to_rgb.train_x[:, 0], to_rgb.train_x[:, 2])
    # a constant image stays that constant through the bilinear resize
    flat = Data("flat", torch.full((2, 3, 4, 4), 0.5), torch.zeros(2, dtype=torch.long),
                torch.full((2, 3, 4, 4), 0.5), torch.zeros(2, dtype=torch.long), 1)
    gray = fit_to_source(flat, (1, 28, 28))
    assert gray.train_x.shape == (2, 1, 28, 28) and torch.allclose(gray.train_x, torch.tensor(.5))
    assert fit_to_source(target, (1, 8, 8)).train_x is not None


@pytest.mark.parametrize("model", [MLP((1, 8, 8), 4, hidden=[16, 12]),
                                   SmallCNN((1, 8, 8), 4, channels=[4, 6])])
def test_features_are_the_classifier_input(model: torch.nn.Module) -> None:
    x = torch.randn(5, 1, 8, 8)
    name, head = classifier(model)
    feats = features(model.eval(), x)
    assert feats.shape == (5, head.in_features)
    assert torch.allclose(head(feats), model(x), atol=1e-5)


def test_probe_and_fine_tune_learn_a_new_head_and_leave_the_source_alone() -> None:
    torch.manual_seed(0)
    source = MLP((1, 8, 8), 4, hidden=[32])
    before = {k: v.clone() for k, v in source.state_dict().items()}
    target = _images(60, (1, 8, 8), 3)          # 3 target classes, 4 source classes
    recipe = Recipe(epochs=20, batch_size=16, lr=0.1, weight_decay=0.0)
    probe_acc, probe_s = linear_probe(source, target, recipe, seed=0)
    tune_acc, tune_s = fine_tune(source, target, recipe, seed=0)
    assert probe_acc > 90 and tune_acc > 90 and probe_s > 0 and tune_s > 0
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in before.items())
    assert linear_probe(source, target, recipe, seed=0)[0] == probe_acc  # deterministic


def test_class_influence_on_a_hand_computed_case() -> None:
    subsets = [(0, 1), (0, 2), (1, 2)]
    scores = [10.0, 20.0, 30.0]
    rows = class_influence(subsets, scores, 4)
    # class 0: with {10, 20} -> 15, without {30} -> -15; class 1: 20 - 20 = 0; class 2: 25 - 10
    assert [r["influence"] for r in rows[:3]] == [-15.0, 0.0, 15.0]
    assert rows[3]["models_with"] == 0 and rows[3]["influence"] != rows[3]["influence"]  # NaN
    assert most_harmful(rows, 1) == (0,) and most_harmful(rows, 2) == (0, 1)
    with pytest.raises(RuntimeError):
        most_harmful(rows, 4)


def test_class_subsets_are_seeded_halves() -> None:
    settings = InfluenceSettings(models=8, share=0.5, seed=1)
    subsets = class_subsets(10, settings)
    assert subsets == class_subsets(10, settings) and len(subsets) == 8
    assert all(len(s) == 5 and len(set(s)) == 5 for s in subsets)
    assert subsets != class_subsets(10, InfluenceSettings(models=8, share=0.5, seed=2))


def test_transfer_pipeline_on_tiny_data(tmp_path: Path) -> None:
    out = tmp_path / "job"
    console = Console(record=True, width=200)
    df = run_transfer(transfer_cfg(*TINY, "method=ft", "scenario.forget_classes=[1]",
                                   results_dir=tmp_path), out, console)
    assert list(df.role) == ["original", "retrain", "unlearned"]
    assert set(df.target) == {"digits"} and set(df.dropped_classes.astype(str)) == {"1"}
    for column in ("probe_TA", "finetune_TA"):
        assert df[column].between(30, 100).all(), df[column]  # far above 10 % chance
    assert (df[["probe_s", "finetune_s"]] > 0).all().all()
    saved = pd.read_csv(out / "metrics.csv")
    assert "probe_TA" in saved.columns and (out / "done").is_file()
    assert "transfer:" in (out / "config.yaml").read_text()
    # a rerun of a sweep scores this finished job from its metrics.csv: the unlearned avg_gap
    assert stored_transfer(DictConfig({}), out) == pytest.approx(
        df[df.role == "unlearned"].avg_gap.iloc[0])
    # a second method reuses the original's and the retrain's transfer scores (memoised)
    again = run_transfer(transfer_cfg(*TINY, "method=ga", "scenario.forget_classes=[1]",
                                      results_dir=tmp_path), None, Console(quiet=True))
    assert again.probe_TA.iloc[:2].tolist() == df.probe_TA.iloc[:2].tolist()
    assert again.probe_s.iloc[:2].tolist() == df.probe_s.iloc[:2].tolist()


def test_influence_chooses_the_dropped_classes(tmp_path: Path) -> None:
    out = tmp_path / "job"
    console = Console(record=True, width=200)
    df = run_transfer(transfer_cfg(*TINY, "transfer.classes=influence",
                                   "transfer.influence.models=4", "transfer.influence.drop=1",
                                   results_dir=tmp_path), out, console)
    influence = pd.read_csv(out / "class_influence.csv")
    chosen = int(influence.sort_values(["influence", "class"]).iloc[0]["class"])
    assert set(df.dropped_classes.astype(str)) == {str(chosen)}
    assert "class influence on the target" in console.export_text()


BAD = [
    (("transfer.target=nope",), "transfer.target"),
    (("transfer.target=mnist", "data_root=/nonexistent"), "transfer.target"),
    (("transfer.probe.lr=0",), "transfer.probe.lr"),
    (("transfer.finetune.epochs=0",), "transfer.finetune.epochs"),
    (("+transfer.probe.foo=1",), "transfer.probe.foo"),
    (("transfer.classes=best",), "transfer.classes"),
    (("transfer.classes=influence", "transfer.influence.drop=4"), "transfer.influence.drop"),
    (("transfer.influence.models=1",), "transfer.influence.models"),
    (("transfer.influence.share=1.0",), "transfer.influence.share"),
    (("scenario=random",), "scenario"),
    (("scenario.forget_classes=[7]",), "scenario.forget_classes"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_transfer_input_names_its_key(tmp_path: Path, overrides: tuple, key: str) -> None:
    cfg = transfer_cfg("dataset=synthetic", *overrides, results_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        check_transfer_job(cfg, DataCache())
    assert err.value.key == key


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unlearnbench.transfer_run",
                           f"results_dir={tmp_path / 'results'}", "progress=false", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.parametrize("args", [("transfer.target=nope",),
                                  ("-m", "seed=0,1", "transfer.finetune.lr=-1")])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, args: tuple) -> None:
    proc = _cli(tmp_path, "dataset=synthetic", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "transfer." in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists() or not [
        p for p in (tmp_path / "results").rglob("*") if p.is_file()]


def test_cli_runs_a_transfer_job(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _cli(tmp_path, *TINY, f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    saved = pd.read_csv(out / "metrics.csv")
    assert saved.probe_TA.notna().all() and (out / "done").is_file()

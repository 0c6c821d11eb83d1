"""The backdoor scenario (Trojan cleansing): trigger stamping, deterministic poisoning, ASR on a
constructed case, cache keys of poisoned vs clean data, data-dependent config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

from unlearnbench.cache import cache_key
from unlearnbench.context import TrainEnv, method_context
from unlearnbench.data import Data
from unlearnbench.errors import ConfigError
from unlearnbench.metrics.backdoor import attack_success
from unlearnbench.poison import Poisoning, Trigger
from unlearnbench.runner import prepare, run
from unlearnbench.scenarios import Split, backdoor
from unlearnbench.training import Recipe
from unlearnbench.validation import validate

from .conftest import SYNTH, make_cfg

BACKDOOR = (*SYNTH, "scenario=backdoor")


def _data(n: int = 40, size: int = 10, classes: int = 4) -> Data:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, size, size, generator=g)
    y = torch.arange(n) % classes
    return Data("toy", x, y, x.clone(), y.clone(), classes,
                pixel_mean=(0.5, 0.25), pixel_std=(0.5, 0.25))


@pytest.mark.parametrize(("position", "rows", "cols"), [
    ("bottom_right", (5, 8), (5, 8)),   # the reference: [-2-size:-2] on both axes
    ("bottom_left", (5, 8), (2, 5)),
    ("top_right", (2, 5), (5, 8)),
    ("top_left", (2, 5), (2, 5)),
])
def test_trigger_stamps_exactly_its_square(position: str, rows: tuple, cols: tuple) -> None:
    data = _data()
    trigger = Trigger(size=3, position=position, margin=2, value=1.0)
    out = trigger.stamp(data.train_x, data)
    inside = torch.zeros(10, 10, dtype=torch.bool)
    inside[rows[0]:rows[1], cols[0]:cols[1]] = True
    # raw 1.0 through each channel's normalisation: (1 - 0.5) / 0.5 = 1, (1 - 0.25) / 0.25 = 3
    assert torch.all(out[:, 0][:, inside] == 1.0) and torch.all(out[:, 1][:, inside] == 3.0)
    assert torch.equal(out[:, :, ~inside], data.train_x[:, :, ~inside])
    assert not torch.equal(out, data.train_x)  # a copy: the input is untouched
    assert trigger.fits(5, 5) and not trigger.fits(4, 10)


def test_poisoning_is_deterministic_and_touches_only_the_forget_rows() -> None:
    data = _data(n=200)
    forget = backdoor(data.train_y, 4, 3, poison_ratio=0.1, target_class=2)
    again = backdoor(data.train_y, 4, 3, poison_ratio=0.1, target_class=2)
    other = backdoor(data.train_y, 4, 4, poison_ratio=0.1, target_class=2)
    assert torch.equal(forget.indices, again.indices) and len(forget.indices) == 20
    assert not torch.equal(forget.indices, other.indices)
    assert forget.transform is not None
    poisoned = forget.transform.apply(data)
    rows = torch.zeros(200, dtype=torch.bool)
    rows[forget.indices] = True
    assert torch.all(poisoned.train_y[rows] == 2)
    assert torch.equal(poisoned.train_y[~rows], data.train_y[~rows])
    assert torch.equal(poisoned.train_x[~rows], data.train_x[~rows])
    assert not torch.equal(poisoned.train_x[rows], data.train_x[rows])
    assert torch.equal(poisoned.test_x, data.test_x) and torch.equal(poisoned.test_y, data.test_y)
    # the reference draws from every class, the target's included
    assert set(data.train_y[forget.indices].tolist()) == {0, 1, 2, 3}


class TriggerReader(nn.Module):
    """Predicts the class written in pixel (0, 0, 0), except that a triggered image of an even
    class is predicted as class 0 (the target)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        label = x[:, 0, 0, 0].round().long()
        triggered = x[:, 0, -3, -3] > 50.0
        pred = torch.where(triggered & (label % 2 == 0), torch.zeros_like(label), label)
        return nn.functional.one_hot(pred, 4).float()


def test_asr_on_a_constructed_case() -> None:
    y = torch.arange(4).repeat(5)                    # 5 test images of each class 0..3
    x = torch.zeros(len(y), 1, 8, 8)
    x[:, 0, 0, 0] = y.float()
    data = Data("toy", x, y, x.clone(), y.clone(), 4)  # no normalisation: value as is
    trigger = Trigger(size=2, position="bottom_right", margin=1, value=100.0)
    split = Split(torch.arange(4), torch.arange(4, 20),
                  transform=Poisoning(trigger, target_class=0, indices=torch.arange(4)))
    env = TrainEnv(data, split, Recipe(epochs=1, batch_size=8, lr=0.1), seed=0,
                   device=torch.device("cpu"), model_factory=lambda shape, k: nn.Identity())
    scores = attack_success(TriggerReader(), env, batch_size=7)
    assert scores["ASR"] == pytest.approx(100 / 3)   # non-target classes 1, 2, 3: class 2 hit
    assert scores["ASR_all"] == pytest.approx(50.0)  # with class 0: classes 0 and 2 of 4
    clean = Split(torch.arange(4), torch.arange(4, 20))
    assert attack_success(TriggerReader(), TrainEnv(
        data, clean, env.recipe, 0, env.device, env.model_factory), 7) == {}


def test_poisoned_and_clean_models_never_share_a_cache_key(tmp_path: Path) -> None:
    quiet = Console(quiet=True)

    def keys(*overrides: str) -> dict[str, str]:
        refs = prepare(make_cfg(*SYNTH, *overrides, results_dir=tmp_path), quiet).refs
        return {role: cache_key(refs.key_material(role, 0, refs.stacks[role]))
                for role in ("original", "retrain")}

    clean_a, clean_b = keys("scenario=classwise"), keys("scenario=random")
    poisoned = keys("scenario=backdoor")
    other_trigger = keys("scenario=backdoor", "scenario.value=0.0")
    other_target = keys("scenario=backdoor", "scenario.target_class=3")
    assert clean_a["original"] == clean_b["original"]  # clean originals: one key, as before
    originals = {clean_a["original"], poisoned["original"], other_trigger["original"],
                 other_target["original"]}
    assert len(originals) == 4
    assert len({poisoned["retrain"], other_trigger["retrain"], other_target["retrain"]}) == 3
    refs = prepare(make_cfg(*SYNTH, results_dir=tmp_path), quiet).refs
    assert "data_transform" not in refs.key_material("original", 0, refs.stacks["original"])


def test_backdoor_job_trains_the_retrain_on_clean_retained_data(tmp_path: Path) -> None:
    job = prepare(make_cfg(*BACKDOOR, results_dir=tmp_path), Console(quiet=True))
    clean = prepare(make_cfg(*SYNTH, "scenario=random", results_dir=tmp_path),
                    Console(quiet=True)).env.data
    env = job.env
    assert torch.equal(env.data.train_x[env.split.retain], clean.train_x[env.split.retain])
    assert torch.equal(env.data.train_y[env.split.retain], clean.train_y[env.split.retain])
    assert torch.all(env.data.train_y[env.split.forget] == 0)
    # methods get D_f and D_r, never the trigger
    assert method_context(env, "ft", "full").split.transform is None


def test_backdoor_rows_report_asr_and_clean_rows_do_not(tmp_path: Path) -> None:
    df = run(make_cfg(*BACKDOOR, "train.epochs=8", results_dir=tmp_path), None,
             Console(quiet=True)).set_index("role")
    assert {"ASR", "ASR_all", "TA"} <= set(df.columns)
    assert df.loc["original", "ASR"] > 80.0 > 20.0 > df.loc["retrain", "ASR"]
    assert df.loc["original", "UA"] < 20.0 < 60.0 < df.loc["retrain", "UA"]
    clean = run(make_cfg(*SYNTH, results_dir=tmp_path), None, Console(quiet=True))
    assert "ASR" not in clean.columns


@pytest.mark.parametrize(("overrides", "key"), [
    (("scenario.size=8",), "scenario.size"),           # 8 + margin 2 > the 8x8 images
    (("scenario.margin=7",), "scenario.size"),
    (("scenario.target_class=10",), "scenario.target_class"),
])
def test_data_dependent_errors_come_before_training(tmp_path: Path, overrides: tuple,
                                                    key: str) -> None:
    with pytest.raises(ConfigError) as err:
        prepare(make_cfg(*BACKDOOR, *overrides, results_dir=tmp_path), Console(quiet=True))
    assert err.value.key == key
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(("override", "key"), [
    ("scenario.poison_ratio=1.0", "scenario.poison_ratio"),
    ("scenario.poison_ratio=0", "scenario.poison_ratio"),
    ("scenario.size=0", "scenario.size"),
    ("scenario.value=1.5", "scenario.value"),
    ("scenario.position=middle", "scenario.position"),
])
def test_trigger_settings_are_typed(tmp_path: Path, override: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(*BACKDOOR, override, results_dir=tmp_path))
    assert err.value.key == key

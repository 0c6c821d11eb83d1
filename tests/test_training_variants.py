"""Training variants (Amnesiac, SISA) and the `samples` deletion scenario."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from rich.console import Console
from torch import nn

from unlearnbench.errors import ConfigError
from unlearnbench.producers import sisa
from unlearnbench.producers.amnesiac import RecordedOriginal
from unlearnbench.runner import Prepared, prepare, run, run_method
from unlearnbench.scenarios import Split, make_split, shard_partition
from unlearnbench.validation import validate

from .conftest import SYNTH, make_cfg


def _equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _unlearn(tmp_path: Path, *overrides: str) -> tuple[Prepared, nn.Module, nn.Module, dict]:
    """A synthetic job through the runner: the job, original, retrain, method result."""
    job, result = run_method(make_cfg(*SYNTH, *overrides, results_dir=tmp_path),
                             Console(quiet=True))
    return job, job.refs.get("original").model, job.refs.get("retrain").model, result


def _samples(count: int, in_shards: int = 0, shards: int = 5):
    return OmegaConf.create({"_target_": "unlearnbench.scenarios.samples", "name": "samples",
                             "count": count, "in_shards": in_shards, "shards": shards})


# --- the `samples` scenario -------------------------------------------------------------

def test_samples_scenario_uniform_and_concentrated() -> None:
    y = torch.arange(1000) % 10
    split = make_split(_samples(37), y, 10, seed=3)
    assert len(split.forget) == 37 and len(split.retain) == 963
    assert split.forget.tolist() == sorted(set(split.forget.tolist()))
    parts = shard_partition(1000, 5, seed=3)
    hit = {s for s, p in enumerate(parts) if torch.isin(split.forget, p).any()}
    assert len(hit) > 1  # uniform draws land in several shards
    concentrated = make_split(_samples(37, in_shards=1), y, 10, seed=3)
    assert torch.isin(concentrated.forget, parts[0]).all()


@pytest.mark.parametrize("scenario", [_samples(100), OmegaConf.create(
    {"_target_": "unlearnbench.scenarios.random", "name": "random", "fraction": 0.1})])
def test_forget_draw_is_independent_of_the_training_order(scenario) -> None:
    """Training orders epoch 1 with Generator().manual_seed(seed): a forget set drawn from the
    same stream would fill the first batches instead of spreading over all of them."""
    n, batch = 1000, 32
    forget = make_split(scenario, torch.arange(n) % 10, 10, seed=0).forget
    epoch_order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    hit = torch.isin(epoch_order, forget).reshape(-1, 1)[: n // batch * batch].reshape(-1, batch)
    assert hit.any(1).float().mean() > 0.9  # ~97% of batches hold one of the 100 samples


@pytest.mark.parametrize(("count", "match"), [
    (0, "scenario.count=0 is invalid; allowed: an integer with 1 <= count"),
    (1.5, "scenario.count=1.5"),
])
def test_samples_count_checked_without_data(count, match: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=match):
        validate(make_cfg("scenario=samples", f"scenario.count={count}", results_dir=tmp_path))


def test_samples_count_checked_against_the_data() -> None:
    y = torch.arange(100) % 10
    with pytest.raises(ConfigError, match="count=100 is invalid.*n_train=100"):
        make_split(_samples(100), y, 10, seed=0)
    with pytest.raises(ConfigError, match="at most 20, the samples of 1 of 5 shards"):
        make_split(_samples(21, in_shards=1), y, 10, seed=0)
    with pytest.raises(ConfigError, match="scenario.in_shards=6"):
        make_split(_samples(3, in_shards=6), y, 10, seed=0)


# --- SISA ---------------------------------------------------------------------------------

def test_slice_epochs_follow_the_paper_and_cost_one_training() -> None:
    assert sisa.slice_epochs(20, 1) == [20]
    for epochs, slices in [(20, 5), (8, 10), (30, 4)]:
        per_slice = sisa.slice_epochs(epochs, slices)
        # sample-epochs over the cumulative slices ~ `epochs` passes over the shard
        cost = sum(e * (r + 1) / slices for r, e in enumerate(per_slice))
        assert abs(cost - epochs) <= 1.0 and per_slice[-1] >= 1


def test_ensemble_aggregations() -> None:
    class Fixed(nn.Module):
        def __init__(self, logits: list[float]) -> None:
            super().__init__()
            self.logits = nn.Parameter(torch.tensor(logits))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.logits.expand(len(x), -1)

    members = [Fixed([0.0, 1.0, 0.0]), Fixed([0.0, 1.0, 0.0]), Fixed([0.0, 0.0, 9.0])]
    x = torch.zeros(2, 1)
    votes = sisa.Ensemble(members, "majority")(x)
    assert votes.argmax(1).tolist() == [1, 1]
    assert torch.allclose(votes.softmax(1)[0], torch.tensor([0.0, 2 / 3, 1 / 3]), atol=1e-4)
    mean = sisa.Ensemble(members, "mean_softmax")(x)
    assert mean.argmax(1).tolist() == [2, 2]  # one confident member outweighs two unsure ones
    expected = torch.stack([torch.softmax(m.logits, 0) for m in members]).mean(0)
    assert torch.allclose(mean.exp()[0], expected, atol=1e-6)


def test_sisa_one_shard_one_slice_equals_plain_training(tmp_path: Path) -> None:
    job, original, retrain, result = _unlearn(tmp_path, "method=sisa",
                                              "method.runner.training.shards=1",
                                              "method.runner.training.slices=1")
    (member,) = job.refs.get("variant").model.members
    assert _equal(member, original)
    # and deleting retrains the one constituent on D_r from the same init: the plain retrain
    assert result["shards_retrained"] == 1 and _equal(result["model"].members[0], retrain)


def test_sisa_deleting_from_one_shard_retrains_only_that_shard(tmp_path: Path) -> None:
    job, _, _, result = _unlearn(tmp_path, "method=sisa", "method.runner.training.shards=4",
                                 "method.runner.training.slices=3", "scenario=samples",
                                 "scenario.count=5", "scenario.in_shards=1")
    assert result["shards_retrained"] == 1
    variant = job.refs.get("variant")
    before, after = variant.model.members, result["model"].members
    assert [_equal(a, b) for a, b in zip(before, after, strict=True)] == [False, True, True, True]
    assert 0 < result["RTE_s"] < variant.seconds
    # Exact unlearning: resuming from the checkpoint gives the constituent SISA would have
    # trained from scratch without the forgotten samples.
    env = job.env
    drop = torch.zeros(len(env.data.train_y), dtype=torch.bool)
    drop[env.split.forget] = True
    slices = sisa.layout(len(drop), 4, 3, env.seed)[0]
    scratch = sisa.fresh_member(env, 0)
    sisa.train_slices(scratch, env, slices, 0, first=0, drop=drop)
    assert _equal(scratch, after[0])
    # the work redone is less than one shard's training, a fraction of the ensemble's
    assert result["work_speedup_vs_ensemble"] >= 4 and result["work_speedup"] >= 4


# --- Amnesiac -----------------------------------------------------------------------------

def test_amnesiac_recorded_original_equals_plain_original(tmp_path: Path) -> None:
    job, original, _, result = _unlearn(tmp_path, "method=amnesiac", "scenario=samples",
                                        "scenario.count=1")
    assert _equal(job.refs.get("variant").model, original)
    assert result["recorded_equals_original"] == 1.0
    # one forgotten sample sits in exactly one batch per epoch
    epochs, steps = job.env.recipe.epochs, job.refs.get("variant").meta["steps"]
    assert result["batches_removed"] == epochs and result["batches_removed_share"] == epochs / steps
    assert not _equal(result["model"], original)


def test_amnesiac_records_nothing_for_an_empty_forget_set(tmp_path: Path) -> None:
    job = prepare(make_cfg(*SYNTH, "method=amnesiac", results_dir=tmp_path), Console(quiet=True))
    n = len(job.env.data.train_y)
    env = replace(job.env, split=Split(forget=torch.zeros(0, dtype=torch.long),
                                       retain=torch.arange(n)))
    tensors, meta = RecordedOriginal().produce("variant", env, lookup=None)
    assert meta["steps_affected"] == 0
    assert all(float(v.abs().max()) == 0 for k, v in tensors.items() if k.startswith("delta."))
    plain = job.refs.get("original").model.state_dict()
    assert all(torch.equal(tensors[f"model.{k}"], v) for k, v in plain.items())


def test_amnesiac_removes_a_class_and_costs_retain_accuracy(tmp_path: Path) -> None:
    """Class-wise, every batch holds a forget sample: subtracting them all rewinds the model to
    its initialisation, so the class is gone and so is everything else (the paper's caveat);
    one repair epoch on D_r brings the retained classes back without the forgotten one."""
    rows = {}
    for repair in (0, 1):
        df = run(make_cfg(*SYNTH, "method=amnesiac", f"method.repair_epochs={repair}",
                          "method.repair_lr=0.05", results_dir=tmp_path), None,
                 Console(quiet=True)).set_index("role")
        rows[repair] = df.loc["unlearned"]
    original = df.loc["original"]
    assert rows[0]["batches_removed_share"] == 1.0
    assert rows[0]["UA"] >= 90 and rows[0]["RA"] < original["RA"] - 30
    assert rows[1]["UA"] >= 90 and rows[1]["RA"] > rows[0]["RA"] + 30

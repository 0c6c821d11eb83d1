"""Prune-then-unlearn: masks, their fixity through unlearning, caching, config errors;
the γ schedulers of ℓ1-sparse; the WoodFisher inverse and the Fisher of IU/FF."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from rich.console import Console

from unlearnbench.errors import ConfigError
from unlearnbench.masks import magnitude_masks, prunable, synflow_masks
from unlearnbench.methods.iu import woodfisher_ihvp
from unlearnbench.methods.l1_sparse import gamma_at
from unlearnbench.models import MLP
from unlearnbench.runner import prepare, run, run_method
from unlearnbench.validation import validate

from .conftest import SYNTH, make_cfg

SPARSE = (*SYNTH, "sparsity=omp", "sparsity.rate=0.8")


def zeros_where_pruned(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> bool:
    params = dict(model.named_parameters())
    return all(bool((params[n].detach().cpu()[~m] == 0).all()) for n, m in masks.items())


@pytest.mark.parametrize("method", ["ft", "ga", "rl", "iu", "ff", "l1_sparse", "salun",
                                    "scrub", "neggrad_plus"])
def test_mask_stays_fixed_through_unlearning(method: str, shared_results: Path) -> None:
    job, result = run_method(make_cfg(*SPARSE, f"method={method}", results_dir=shared_results),
                             Console(quiet=True))
    original, retrain = job.refs.get("original").model, job.refs.get("retrain").model
    masks = job.refs.get("original").artifacts["masks"]
    kept = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
    assert kept == pytest.approx(0.2, abs=0.01)
    assert zeros_where_pruned(original, masks) and zeros_where_pruned(retrain, masks)
    assert result.get("status", "ok") == "ok", result.get("reason")
    model = result["model"]
    assert zeros_where_pruned(model, masks)
    # ... and the method did change the kept weights
    params = dict(model.named_parameters())
    name = next(iter(masks))
    assert not torch.equal(params[name].detach(), dict(original.named_parameters())[name].detach())


def test_sparse_models_cached_under_own_keys_and_dense_keys_unchanged(tmp_path: Path) -> None:
    refs = prepare(make_cfg(*SYNTH, results_dir=tmp_path), Console(quiet=True)).refs
    plain = refs.key_material("original", 0, refs.stacks["original"])
    assert "sparsity" not in plain  # dense keys do not depend on the sparsity group
    console = Console(record=True, width=200)
    df = run(make_cfg(*SPARSE, results_dir=tmp_path), None, console)
    text = console.export_text()
    assert "original: trained" in text and "retrain: trained" in text
    assert set(df.sparsity) == {"omp"} and set(df.sparsity_rate) == {0.8}
    console = Console(record=True, width=200)
    run(make_cfg(*SPARSE, "method=ga", results_dir=tmp_path), None, console)
    text = console.export_text()
    assert "original: cache hit" in text and "retrain: cache hit" in text
    console = Console(record=True, width=200)
    df = run(make_cfg(*SYNTH, "method=ga", results_dir=tmp_path), None, console)
    assert "original: cache hit" in console.export_text()  # the dense one, trained for OMP
    assert set(df.sparsity) == {"none"} and set(df.sparsity_rate) == {0.0}


@pytest.mark.parametrize("name", ["synflow", "imp"])
def test_synflow_and_imp_reach_the_rate(name: str, shared_results: Path) -> None:
    extra = ["sparsity.iterations=20"] if name == "synflow" else ["sparsity.rounds=2"]
    refs = prepare(make_cfg(*SYNTH, f"sparsity={name}", "sparsity.rate=0.9", *extra,
                            results_dir=shared_results), Console(quiet=True)).refs
    original, retrain = refs.get("original").model, refs.get("retrain").model
    masks = refs.get("original").artifacts["masks"]
    kept = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
    assert kept == pytest.approx(0.1, abs=0.01)
    assert zeros_where_pruned(original, masks) and zeros_where_pruned(retrain, masks)


def test_magnitude_masks_prune_smallest_globally_and_iteratively() -> None:
    torch.manual_seed(0)
    model = MLP((1, 4, 4), 3, hidden=[8])
    names = list(prunable(model))
    assert names == ["net.1.weight"]  # the classifier (last Linear) stays dense
    first = magnitude_masks(model, 0.5)
    w = model.net[1].weight.detach().abs()
    assert int(first["net.1.weight"].sum()) == w.numel() // 2
    assert w[first["net.1.weight"]].min() >= w[~first["net.1.weight"]].max()
    second = magnitude_masks(model, 0.5, first)  # half of what is left
    assert int(second["net.1.weight"].sum()) == w.numel() // 4
    assert not (second["net.1.weight"] & ~first["net.1.weight"]).any()


def test_synflow_is_data_free_and_keeps_a_path_through_every_layer() -> None:
    torch.manual_seed(0)
    model = MLP((1, 4, 4), 3, hidden=[32, 32])
    masks = synflow_masks(model, 0.9, (1, 4, 4), iterations=10)
    again = synflow_masks(model, 0.9, (1, 4, 4), iterations=10)
    assert all(torch.equal(masks[n], again[n]) for n in masks)
    kept = [int(m.sum()) for m in masks.values()]
    assert all(k > 0 for k in kept)  # no layer collapse (SynFlow's point)
    assert sum(kept) == round(0.1 * sum(m.numel() for m in masks.values()))


def test_gamma_schedulers_give_documented_values() -> None:
    g = 1e-3
    assert [gamma_at(e, 10, g, "constant") for e in (0, 5, 9)] == [g, g, g]
    assert [gamma_at(e, 10, g, "linear") for e in range(10)] == pytest.approx(
        [g * (1 - e / 10) for e in range(10)])
    assert gamma_at(0, 10, g, "tanh") == pytest.approx(g)
    assert gamma_at(1, 10, g, "tanh") == pytest.approx(g * (1 - math.tanh(0.3) / math.tanh(3)))
    tanh = [gamma_at(e, 10, g, "tanh") for e in range(10)]
    assert all(a > b for a, b in zip(tanh, tanh[1:], strict=False)) and tanh[-1] < 0.05 * g
    # the last no_l1_epochs run without the penalty; the linear decay spans the others
    assert gamma_at(7, 10, g, "linear", no_l1_epochs=3) == 0.0
    assert gamma_at(3, 10, g, "linear", no_l1_epochs=3) == pytest.approx(g * (1 - 3 / 7))
    with pytest.raises(ConfigError, match="method.scheduler"):
        gamma_at(0, 10, g, "cosine")


def test_woodfisher_inverse_matches_the_dense_solve() -> None:
    torch.manual_seed(0)
    grads, v = torch.randn(7, 20), torch.randn(20)
    fisher = 0.5 * torch.eye(20) + grads.T @ grads / 7
    expected = torch.linalg.solve(fisher.double(), v.double()).float()
    assert torch.allclose(woodfisher_ihvp(grads, v, 0.5), expected, atol=1e-4)


def test_per_sample_grads_match_a_loop() -> None:
    from unlearnbench.gradients import flatten, per_sample_grads

    torch.manual_seed(0)
    model = MLP((1, 2, 3), 3, hidden=[5])
    x, y = torch.randn(9, 1, 2, 3), torch.randint(0, 3, (9,))
    vectorised = torch.cat([g for _, g in per_sample_grads(model, x, y, chunk=4)])
    for i in range(9):
        loss = torch.nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, list(model.parameters()))
        looped = flatten(dict(zip([n for n, _ in model.named_parameters()], grads, strict=True)))
        assert torch.allclose(vectorised[i], looped, atol=1e-6)


def test_per_sample_dots_are_the_per_sample_gradients_times_u() -> None:
    """IU's reference mode reads g_i·u from forward-mode passes: the same numbers."""
    from unlearnbench.gradients import per_sample_dots, per_sample_grads

    torch.manual_seed(1)
    model = MLP((1, 2, 3), 3, hidden=[5])
    x, y = torch.randn(9, 1, 2, 3), torch.randint(0, 3, (9,))
    grads = torch.cat([g for _, g in per_sample_grads(model, x, y, chunk=4)])
    u = torch.randn(grads.shape[1])
    assert torch.allclose(per_sample_dots(model, x, y, u, batch_size=4), grads @ u, atol=1e-5)


@pytest.mark.parametrize(("override", "key"), [
    ("sparsity.rate=1.0", "sparsity.rate"), ("sparsity.rate=-0.1", "sparsity.rate"),
    ("sparsity.rewind_epoch=99", "sparsity.rewind_epoch")])
def test_bad_sparsity_is_one_config_error(override: str, key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=key):
        cfg = make_cfg("sparsity=omp", override, results_dir=tmp_path)
        prepare(cfg, Console(quiet=True))  # data-free checks, then the data-dependent ones


def test_rate_without_a_pruning_method_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sparsity=none"):
        validate(make_cfg("sparsity.rate=0.5", results_dir=tmp_path))


def test_report_script_writes_table_and_charts(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "sparsity_report", Path(__file__).resolve().parents[1] / "scripts" / "sparsity_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    for i, sparsity in enumerate(["sparsity=none", "sparsity=omp"]):
        for method in ("ft", "iu"):
            for rate in (["sparsity.rate=0.5", "sparsity.rate=0.8"] if i else [""]):
                over = [o for o in (*SYNTH, sparsity, rate, f"method={method}") if o]
                run(make_cfg(*over, results_dir=tmp_path), tmp_path / "sweep" / "_".join(over),
                    Console(quiet=True))
    agg = report.aggregate(report.load([tmp_path / "sweep"]))
    assert set(agg.method) == {"retrain", "ft", "iu"}
    assert set(agg.sparsity_rate) == {0.0, 0.5, 0.8}
    out = tmp_path / "report"
    report.radar(agg, "classwise", out.with_suffix(".png"))
    assert report.versus_rate(agg, "classwise", tmp_path / "vs.png")
    assert out.with_suffix(".png").stat().st_size > 1000 and (tmp_path / "vs.png").is_file()
    assert "±" in report.markdown(agg)

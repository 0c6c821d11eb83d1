"""SalUn, SCRUB, NegGrad+ and SSD pinned to small hand-computed cases of their references'
rules, and the retain-only relearn attack (the tamper test)."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

from unlearnbench.context import method_context
from unlearnbench.methods import neggrad_plus, salun, scrub, ssd
from unlearnbench.methods.base import epoch_batches
from unlearnbench.metrics.relearn import attack_rows, relearn_metrics
from unlearnbench.runner import prepare, run

from .conftest import SYNTH, make_cfg


def linear(weight: list[list[float]], bias: list[float]) -> nn.Linear:
    """nn.Linear with the given weights (out × in) and bias."""
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


# --- SalUn


def test_saliency_sums_signed_batch_gradients_before_the_absolute_value() -> None:
    # W = 0, b = 0: p = (1/2, 1/2), ∂CE/∂z = p − onehot(y). Two batches of one sample, y = 0:
    # x = +1: ∂W = (−½, ½)ᵀ·1, ∂b = (−½, ½);   x = −1: ∂W = (½, −½)ᵀ, ∂b = (−½, ½).
    # Summed: ∂W = 0, ∂b = (−1, 1). The reference ranks |Σ| (not Σ|·|, which would tie W with
    # b): the top half of the 4 parameters is the bias.
    model = linear([[0.0], [0.0]], [0.0, 0.0])
    x, y = torch.tensor([[1.0], [-1.0]]), torch.tensor([0, 0])
    masks = salun.saliency_mask(model, x, y, batch_size=1, ratio=0.5)
    assert masks["weight"].tolist() == [[False], [False]]
    assert masks["bias"].tolist() == [True, True]
    # One batch of both samples (their mean): the same ranking; ratio 1 keeps everything.
    assert salun.saliency_mask(model, x, y, batch_size=2, ratio=0.5)["bias"].all()
    full = salun.saliency_mask(model, x, y, batch_size=2, ratio=1.0)
    assert all(m.all() for m in full.values())


def test_saliency_keeps_floor_of_ratio_globally_ties_by_position() -> None:
    model = linear([[0.0], [0.0]], [0.0, 0.0])
    x, y = torch.tensor([[1.0]]), torch.tensor([0])  # |∂W| = |∂b| = ½ everywhere: all tie
    masks = salun.saliency_mask(model, x, y, batch_size=1, ratio=0.6)  # floor(4 · 0.6) = 2
    assert masks["weight"].tolist() == [[True], [True]] and not masks["bias"].any()


def test_salun_weights_outside_the_mask_end_bit_identical(shared_results: Path) -> None:
    # The reference's PR #33: weight decay and momentum (the recipe has both) must not move
    # the weights outside the saliency mask.
    job = prepare(make_cfg(*SYNTH, "method=salun", results_dir=shared_results),
                  Console(quiet=True))
    original = job.refs.get("original").model
    assert job.env.recipe.weight_decay > 0 and job.env.recipe.momentum > 0
    ctx = method_context(job.env, "salun", "full")
    forget = ctx.split.forget
    masks = salun.saliency_mask(copy.deepcopy(original), ctx.data.train_x[forget],
                                ctx.data.train_y[forget], ctx.recipe.batch_size, 0.5)
    model = salun.unlearn(copy.deepcopy(original), ctx, epochs=2, lr=0.05, mask_ratio=0.5)
    before, after = dict(original.named_parameters()), dict(model.named_parameters())
    moved = 0
    for name, mask in masks.items():
        assert torch.equal(after[name][~mask], before[name][~mask]), name
        moved += int((after[name][mask] != before[name][mask]).sum())
    assert moved > 0.5 * sum(int(m.sum()) for m in masks.values())


@pytest.mark.parametrize("labels", ["salun", "other_class"])
def test_salun_with_every_weight_salient_is_rl(shared_results: Path, labels: str) -> None:
    # SalUn's second step is the reference's RL loop (labels, batch order) restricted to the
    # mask: with mask_ratio 1 nothing is restored, so it must equal RL bit for bit.
    from unlearnbench.methods import rl

    job = prepare(make_cfg(*SYNTH, "method=salun", results_dir=shared_results),
                  Console(quiet=True))
    original = job.refs.get("original").model
    ctx = method_context(job.env, "salun", "full")
    a = salun.unlearn(copy.deepcopy(original), ctx, epochs=2, lr=0.05, mask_ratio=1.0,
                      labels=labels)
    b = rl.unlearn(copy.deepcopy(original), ctx, epochs=2, lr=0.05, labels=labels)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert not torch.equal(next(a.parameters()), next(original.parameters()))


# --- SCRUB


def test_distill_kl_matches_the_hand_computation() -> None:
    # T = 2: teacher logits (2 ln 3, 0) -> p_t = (3/4, 1/4); student (0, 0) -> p_s = (½, ½).
    # KL = ¾ ln(3/2) + ¼ ln(1/2); DistillKL multiplies by T² = 4 and divides by the batch (1).
    teacher = torch.tensor([[2 * math.log(3.0), 0.0]])
    student = torch.zeros(1, 2)
    expected = 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert scrub.distill_kl(student, teacher, 2.0).item() == pytest.approx(expected, rel=1e-6)
    # A batch of two identical rows: the same per-sample value.
    assert scrub.distill_kl(student.repeat(2, 1), teacher.repeat(2, 1), 2.0).item() == \
        pytest.approx(expected, rel=1e-6)


def test_scrub_settings_and_learning_rate_schedule_are_the_reference_notebooks() -> None:
    small = scrub.resolve_setting("auto", 1347)       # digits
    large = scrub.resolve_setting("auto", 60000)      # Fashion-MNIST
    assert (small.optimizer, small.epochs, small.msteps, small.temperature, small.alpha,
            small.gamma, small.weight_decay) == ("adam", 10, 3, 2.0, 0.5, 1.0, 0.1)
    assert (large.optimizer, large.epochs, large.msteps, large.temperature, large.alpha,
            large.gamma) == ("sgd", 3, 2, 4.0, 0.001, 0.99)
    # lr × 0.1 per milestone passed (epoch > m), milestones 5, 8, 9 in the small setting.
    assert [scrub.lr_at(e, small) for e in (1, 5, 6, 8, 9, 10)] == pytest.approx(
        [5e-4, 5e-4, 5e-5, 5e-5, 5e-6, 5e-7])
    assert scrub.resolve_setting("large", 10, alpha=0.3, epochs=None).alpha == 0.3


def test_scrub_steps_follow_min_and_max_losses() -> None:
    # Student = teacher: the KL term has zero gradient, so a min-step is γ·CE's SGD step and
    # a max-step does not move the student. Linear(1→2), W = 0, b = 0, x = 1, y = 0:
    # ∂CE/∂W = (−½, ½)ᵀ, ∂CE/∂b = (−½, ½); lr 0.1, γ 1 -> W = (0.05, −0.05)ᵀ, b likewise.
    setting = scrub.resolve_setting("large", 1, momentum=0.0, weight_decay=0.0, lr=0.1,
                                    gamma=1.0, alpha=0.5)
    x, y = torch.tensor([[1.0]]), torch.tensor([0])
    student, teacher = linear([[0.0], [0.0]], [0.0, 0.0]), linear([[0.0], [0.0]], [0.0, 0.0])
    opt = scrub.make_optimiser(student, setting)
    scrub.scrub_pass(student, teacher, x, y, [torch.tensor([0])], opt, setting, "maximize")
    assert torch.equal(student.weight, teacher.weight)
    scrub.scrub_pass(student, teacher, x, y, [torch.tensor([0])], opt, setting, "minimize")
    assert student.weight.detach().flatten().tolist() == pytest.approx([0.05, -0.05])
    assert student.bias.detach().tolist() == pytest.approx([0.05, -0.05])


# --- NegGrad+


def test_neggrad_plus_step_is_the_weighted_difference_of_gradients() -> None:
    # W = 0, b = 0; retain (x = 1, y = 0): ∂W = (−½, ½)ᵀ; forget (x = 2, y = 1): ∂W = (1, −1)ᵀ.
    # ∂/∂W [β CE_r − (1−β) CE_f] = (½β − 1, 1 − ½β)ᵀ = (−0.525, 0.525)ᵀ for β = 0.95;
    # ∂b = β(−½, ½) − (1−β)(½, −½) = (−½, ½). One SGD step of lr 0.1:
    model = linear([[0.0], [0.0]], [0.0, 0.0])
    loss = neggrad_plus.neggrad_plus_loss(model, torch.tensor([[1.0]]), torch.tensor([0]),
                                          torch.tensor([[2.0]]), torch.tensor([1]), 0.95)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    assert model.weight.detach().flatten().tolist() == pytest.approx([0.0525, -0.0525])
    assert model.bias.detach().tolist() == pytest.approx([0.05, -0.05])


def test_neggrad_plus_cycles_the_forget_batches(shared_results: Path) -> None:
    job = prepare(make_cfg(*SYNTH, "scenario=random", results_dir=shared_results),
                  Console(quiet=True))
    ctx = method_context(job.env, "neggrad_plus", "full")
    seen: list[int] = []

    class Spy(nn.Module):  # counts the forget rows the loss sees
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(len(x))
            return self.inner(x)

    model = Spy(copy.deepcopy(job.refs.get("original").model))
    neggrad_plus.unlearn(model, ctx, epochs=1, lr=1e-3, retain_batch_size=10,
                         forget_batch_size=16)
    n_r, n_f = len(ctx.split.retain), len(ctx.split.forget)
    retain_batches = math.ceil(n_r / 10)
    assert retain_batches > math.ceil(n_f / 16)  # more retain than forget batches: cycled
    assert seen[0::2] == [len(b) for b in epoch_batches(torch.arange(n_r), 10)]
    forget_sizes = [len(b) for b in epoch_batches(torch.arange(n_f), 16)]
    assert seen[1::2] == (forget_sizes * retain_batches)[:retain_batches]


# --- SSD


def test_ssd_dampens_selected_weights_by_the_bounded_ratio() -> None:
    # α = 10, λ = 1: I_f > 10·I_D selects the 2nd and 3rd weights; θ · min(λ I_D/I_f, 1).
    model = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(2.0)
    full = {"weight": torch.tensor([[1.0, 1.0, 1.0, 0.0]])}
    forget = {"weight": torch.tensor([[5.0, 20.0, 100.0, 0.0]])}
    assert ssd.dampen(model, full, forget, 10.0, 1.0) == 2
    assert model.weight.detach()[0].tolist() == pytest.approx([2.0, 0.1, 0.02, 2.0])
    # λ = 50: 50·1/20 = 2.5 is bounded by 1 (never grows); 50/100 = 0.5 dampens.
    with torch.no_grad():
        model.weight.fill_(2.0)
    ssd.dampen(model, full, forget, 10.0, 50.0)
    assert model.weight.detach()[0].tolist() == pytest.approx([2.0, 2.0, 1.0, 2.0])


def test_ssd_importance_is_the_batch_mean_of_squared_batch_gradients() -> None:
    # W = 0, b = 0, x = 1: y = 0 gives ∂b = (−½, ½), y = 1 gives (½, −½). Batches of one:
    # mean of squares = ¼ each. One batch of both: the batch gradient is 0, so is I.
    model = linear([[0.0], [0.0]], [0.0, 0.0])
    x, y = torch.tensor([[1.0], [1.0]]), torch.tensor([0, 1])
    rows = torch.arange(2)
    assert ssd.importances(model, x, y, rows, 1)["bias"].tolist() == pytest.approx([0.25, 0.25])
    assert ssd.importances(model, x, y, rows, 2)["bias"].tolist() == pytest.approx([0.0, 0.0])


def test_lfssd_importance_is_the_mean_absolute_gradient_of_the_squared_output_norm() -> None:
    # f(x) = w·x + b, w = 1, b = 0: ∂(f²)/∂w = 2 f x, ∂/∂b = 2 f. x = 2 -> (8, 4);
    # x = −1 -> (2, −2). Mean of |·| over the two batches: w 5, b 3. Labels are not used.
    model = linear([[1.0]], [0.0])
    x, y = torch.tensor([[2.0], [-1.0]]), torch.tensor([7, 7])
    imp = ssd.importances(model, x, y, torch.arange(2), 1, "label_free")
    assert imp["weight"].item() == pytest.approx(5.0) and imp["bias"].item() == pytest.approx(3.0)


# --- the relearn attack


def test_attack_rows_give_exactly_the_step_budget_from_the_retain_set_only() -> None:
    retain = torch.tensor([3, 5, 8])
    rows = attack_rows(retain, steps=4, batch_size=2, generator=torch.Generator().manual_seed(0))
    assert len(rows) == 8 and set(rows.tolist()) == {3, 5, 8}
    counts = torch.bincount(rows)[[3, 5, 8]]
    assert counts.max() - counts.min() <= 1  # whole passes, the last one cut short


def test_relearn_never_trains_on_the_forget_set(shared_results: Path) -> None:
    job = prepare(make_cfg(*SYNTH, results_dir=shared_results), Console(quiet=True))
    env = job.env
    model = job.refs.get("retrain").model
    poisoned = copy.deepcopy(env.data)
    poisoned.train_x[env.split.forget] = float("nan")  # a single forget row would poison SGD
    env_p = dataclasses.replace(env, data=poisoned)
    before = copy.deepcopy(model.state_dict())
    out = relearn_metrics(model, env_p, 256, steps=20, lr=0.05)
    assert math.isfinite(out["relearn_FA"]) and math.isfinite(out["relearn_TA"])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # Deterministic: the same budget and seed give the same numbers.
    assert relearn_metrics(model, env_p, 256, steps=20, lr=0.05) == out


def test_gap_relearn_is_reported_against_the_retrain_and_stays_out_of_avg_gap(
        tmp_path: Path) -> None:
    df = run(make_cfg(*SYNTH, "method=ga", results_dir=tmp_path), console=Console(quiet=True))
    rows = df.set_index("role")
    ref, unl = rows.loc["retrain"], rows.loc["unlearned"]
    assert unl["gap_relearn"] == pytest.approx(abs(unl["relearn_FA"] - ref["relearn_FA"]))
    assert ref["gap_relearn"] == 0
    assert unl["avg_gap"] == pytest.approx(
        (unl.gap_UA + unl.gap_RA + unl.gap_TA + unl.gap_MIA) / 4)
    assert rows.loc["original"]["gap_relearn"] == pytest.approx(
        abs(rows.loc["original"]["relearn_FA"] - ref["relearn_FA"]))
    off = run(make_cfg(*SYNTH, "method=ga", "eval.metrics.relearn=null", results_dir=tmp_path),
              console=Console(quiet=True))
    assert "relearn_FA" not in off.columns and "gap_relearn" not in off.columns

"""IU, FF and RL pinned to their references (Unlearn-Sparse `Wfisher.py`, `fisher.py`;
Unlearn-Saliency `RL.py`) on tiny cases: hand-computed numbers, or a literal transcription of
the reference's loop run next to our vectorised code."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.context import MethodContext, TrainEnv, method_context
from unlearnbench.data import Data
from unlearnbench.methods import ff, iu, rl
from unlearnbench.methods.base import finetune
from unlearnbench.scenarios import Split
from unlearnbench.training import Recipe


def context(x: torch.Tensor, y: torch.Tensor, forget: torch.Tensor, num_classes: int, *,
            dataset: str = "toy", forget_classes: tuple[int, ...] = (),
            batch_size: int = 4) -> MethodContext:
    retain = torch.tensor([i for i in range(len(y)) if i not in set(forget.tolist())])
    data = Data(dataset, x, y, x[:1], y[:1], num_classes)
    env = TrainEnv(data, Split(forget, retain, forget_classes),
                   Recipe(epochs=1, batch_size=batch_size, lr=0.1), seed=0,
                   device=torch.device("cpu"), model_factory=lambda shape, k: nn.Identity())
    return method_context(env, "test", "full")


def linear(inputs: int, classes: int, bias: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, classes, bias=bias))


# --- IU -----------------------------------------------------------------------------------

def test_iu_reference_recursion_by_hand_is_not_the_inverse_fisher() -> None:
    """g_0 = e_1, g_1 = e_2, v = (1, 1), N = 1: t = o·g_1 = 0, so k = v − (k·g_1)/(1 + 0)·o
    = (1, 1) − 1·(1, 0) = (0, 1). The WoodFisher inverse it intends, F = I + (g_0g_0ᵀ +
    g_1g_1ᵀ)/2 = 1.5 I, gives (2/3, 2/3)."""
    grads = torch.eye(2, dtype=torch.float64)
    v = torch.ones(2, dtype=torch.float64)
    assert torch.allclose(iu.reference_woodfisher([grads], v, 1, 1.0),
                          torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(iu.woodfisher_ihvp(grads, v, 1.0),
                          torch.full((2,), 2 / 3, dtype=torch.float64))


def literal_woodfisher(grads: list[torch.Tensor], v: torch.Tensor, n: int) -> torch.Tensor:
    """Wfisher.py `woodfisher` (l.63-84) over precomputed per-sample gradients."""
    k_vec = torch.clone(v)
    o_vec = None
    for idx, sample_grad in enumerate(grads):
        if o_vec is None:
            o_vec = torch.clone(sample_grad)
        else:
            tmp = torch.dot(o_vec, sample_grad)
            k_vec -= (torch.dot(k_vec, sample_grad) / (n + tmp)) * o_vec
            o_vec -= (tmp / (n + tmp)) * o_vec
        if idx > n:
            return k_vec
    return k_vec


@pytest.mark.parametrize("damping", [1.0, 0.5])
def test_iu_recursion_matches_the_literal_loop(damping: float) -> None:
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(12, 5, generator=g, dtype=torch.float64)
    v = torch.randn(5, generator=g, dtype=torch.float64)
    n = 10
    # F_0 = λI: the literal loop started from F_0⁻¹v and F_0⁻¹g_0 (λ = 1 is the reference).
    scaled = [grads[0] / damping, *grads[1:]]
    expected = literal_woodfisher(scaled, v / damping, n)
    chunks = [grads[:5], grads[5:7], grads[7:]]
    assert torch.allclose(iu.reference_woodfisher(chunks, v, n, damping), expected)


def literal_wfisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor, forget: torch.Tensor,
                    retain: torch.Tensor, alpha: float, n: int, batch_size: int) -> None:
    """Wfisher.py `Wfisher` (l.113-200) with its loaders written as index loops."""
    params = list(model.parameters())

    def sam_grad(loss: torch.Tensor) -> torch.Tensor:
        return torch.cat([t.view(-1) for t in torch.autograd.grad(loss, params)])

    model.eval()
    forget_grad = torch.zeros(sum(p.numel() for p in params))
    retain_grad = torch.zeros_like(forget_grad)
    total = total_2 = 0
    for start in range(0, len(forget), batch_size):
        rows = forget[start : start + batch_size]
        forget_grad += sam_grad(F.cross_entropy(model(x[rows]), y[rows])) * len(rows)
        total += len(rows)
    for start in range(0, len(retain), batch_size):
        rows = retain[start : start + batch_size]
        retain_grad += sam_grad(F.cross_entropy(model(x[rows]), y[rows])) * len(rows)
        total_2 += len(rows)
    retain_grad *= total / ((total + total_2) * total_2)
    forget_grad /= total + total_2
    per_sample = [sam_grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])).detach()
                  for i in retain]
    perturb = literal_woodfisher(per_sample, forget_grad - retain_grad, n)
    with torch.no_grad():
        curr = 0
        for param in params:
            length = param.view(-1).shape[0]
            param += (alpha * perturb)[curr : curr + length].view(param.shape)
            curr += length


def test_iu_step_on_a_two_parameter_model_equals_the_reference() -> None:
    """Two weights, D_f = 3 samples, D_r = 9, N = 3: the reference reads the first N + 2 = 5
    retain samples; the step is α·(v − β g_0) with v = (n_f/n)(∇L_f − ∇L_r)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 1, 1, 1, generator=g)
    y = (x.flatten() > 0).long()
    forget = torch.tensor([0, 5, 9])
    model = linear(1, 2)
    ours = iu.unlearn(copy.deepcopy(model), context(x, y, forget, 2), alpha=2.0,
                      num_samples=3)
    ctx = context(x, y, forget, 2)
    expected = copy.deepcopy(model)
    literal_wfisher(expected, x, y, forget, ctx.split.retain, 2.0, 3, batch_size=4)
    w0, w_ours, w_ref = (m[1].weight.detach() for m in (model, ours, expected))
    assert not torch.allclose(w_ref, w0)
    assert torch.allclose(w_ours, w_ref, rtol=1e-5, atol=1e-7)


def test_iu_options_give_the_earlier_step() -> None:
    """direction=forget_gradient, mode=fixed: θ + α(λI + GᵀG/N)⁻¹∇L_f, first N retain rows."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(10, 1, 1, 2, generator=g)
    y = torch.randint(0, 3, (10,), generator=g)
    forget = torch.tensor([1, 2])
    model = linear(2, 3)
    ctx = context(x, y, forget, 3)
    ours = iu.unlearn(copy.deepcopy(model), ctx, alpha=0.7, direction="forget_gradient",
                      mode="fixed", damping=0.5, num_samples=4)
    params = list(model.parameters())

    def flat_grad(rows: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(model(x[rows]), y[rows])
        return torch.cat([t.flatten() for t in torch.autograd.grad(loss, params)])

    grads = torch.stack([flat_grad(ctx.split.retain[i : i + 1]) for i in range(4)])
    fisher = 0.5 * torch.eye(grads.shape[1]) + grads.T @ grads / 4
    step = 0.7 * torch.linalg.solve(fisher, flat_grad(forget))
    assert torch.allclose(ours[1].weight.detach().flatten() - params[0].detach().flatten(),
                          step, atol=1e-5)


# --- FF -----------------------------------------------------------------------------------

def literal_hessian(model: nn.Module, x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """fisher.py `hessian` (l.51-76) with its loader (shuffle=False) as an index loop."""
    model.eval()
    acc = [torch.zeros_like(p) for p in model.parameters()]
    batches = 0
    for start in range(0, len(x), batch_size):
        data = x[start : start + batch_size]
        batches += 1
        output = model(data)
        prob = F.softmax(output, dim=-1).data
        for label in range(output.shape[1]):
            target = torch.full((len(data),), label, dtype=torch.long)
            loss = F.cross_entropy(output, target)
            model.zero_grad()
            loss.backward(retain_graph=True)
            for a, p in zip(acc, model.parameters(), strict=True):
                a += torch.mean(prob[:, label]) * p.grad.data.pow(2)
    return [a / batches for a in acc]


def test_ff_fisher_equals_the_reference_hessian() -> None:
    """Ten samples in batches of 4 (the last one partial), three classes: per-batch,
    per-class squared gradients of the batch-mean loss, weighted by the mean probability."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10, 1, 1, 2, generator=g)
    model = linear(2, 3, bias=True)
    ours = ff.batch_fisher(model, x, 3, batch_size=4, chunk=8)
    expected = literal_hessian(model, x, batch_size=4)
    for (name, _), ref in zip(model.named_parameters(), expected, strict=True):
        assert torch.allclose(ours[name], ref, rtol=1e-5, atol=1e-9), name


def test_ff_mean_and_variance_per_tensor_by_hand() -> None:
    """α = 0.1, three classes. Classifier weight (3×2), row 2 forgotten (zeroing on):
    1/(F + 1e-8) = [[~1e4, ~1], [2, 0.5], [~9e7, ~9e7]] → clamp 1e3 then 1e2 → ×α
    [[10, 0.1], [0.2, 0.05], [10, 10]] → row means [5.05, 0.125, 10] → row 2 set to 1e-4
    → ×10 [50.5, 1.25, 1e-3]; μ = θ with row 2 = 0."""
    head = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    fisher = torch.tensor([[1e-4, 1.0], [0.5, 2.0], [1e-9, 1e-9]])
    mu, var = ff.mean_and_variance(head, fisher, alpha=0.1, num_classes=3, forgotten=[2])
    assert torch.allclose(var[:, 0], torch.tensor([50.5, 1.25, 1e-3]), rtol=1e-6)
    assert torch.equal(var[:, 0], var[:, 1])
    assert torch.equal(mu, torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]))
    # A hidden weight (2×3, first dim ≠ classes): clamp 1e3 only, no ×10.
    # 1/F = [[1e5→1e3, 100, 1], [0.25]*3] → ×0.1 → row means [(100+10+0.1)/3, 0.025].
    hidden = torch.zeros(2, 3)
    fisher = torch.tensor([[1e-5, 1e-2, 1.0], [4.0, 4.0, 4.0]])
    _, var = ff.mean_and_variance(hidden, fisher, alpha=0.1, num_classes=3, forgotten=[2])
    assert torch.allclose(var[:, 0], torch.tensor([110.1 / 3, 0.025]), rtol=1e-6)
    # A 1-D tensor (bias of a hidden layer): ×10.  1/F = [100, 0.1] → ×0.1 → ×10.
    _, var = ff.mean_and_variance(torch.zeros(2), torch.tensor([1e-2, 10.0]), alpha=0.1,
                                  num_classes=3, forgotten=[2])
    assert torch.allclose(var, torch.tensor([100.0, 0.1]), rtol=1e-6)


def test_ff_head_zeroing_follows_the_reference_by_default() -> None:
    x, y = torch.randn(8, 1, 1, 2), torch.arange(8) % 2
    one_class = {"forget": torch.tensor([0, 2]), "forget_classes": (0,)}
    for dataset, expected in [("cifar10", True), ("cifar100", True), ("digits", False),
                              ("fashion_mnist", False), ("svhn", False)]:
        ctx = context(x, y, one_class["forget"], 2, dataset=dataset,
                      forget_classes=one_class["forget_classes"])
        assert ff.zeroes_head("auto", ctx) is expected, dataset
        assert ff.zeroes_head(True, ctx) and not ff.zeroes_head(False, ctx)
    two = context(x, y, torch.tensor([0, 1, 2]), 2, dataset="cifar10", forget_classes=(0, 1))
    random = context(x, y, torch.tensor([0, 1]), 2, dataset="cifar10")
    assert not ff.zeroes_head("auto", two) and not ff.zeroes_head("auto", random)


def test_ff_with_zero_alpha_changes_only_zeroed_rows() -> None:
    x = torch.randn(12, 1, 1, 2)
    y = torch.arange(12) % 3
    forget = (y == 1).nonzero().squeeze(1)
    model = linear(2, 3, bias=True)
    for dataset, zeroed in [("digits", False), ("cifar10", True)]:
        ctx = context(x, y, forget, 3, dataset=dataset, forget_classes=(1,))
        out = ff.unlearn(copy.deepcopy(model), ctx, alpha=0.0, batch_size=4)
        w, b = out[1].weight.detach(), out[1].bias.detach()
        keep = torch.tensor([0, 2])
        assert torch.equal(w[keep], model[1].weight[keep]) and torch.equal(b[keep],
                                                                           model[1].bias[keep])
        if zeroed:  # μ = 0, σ² = 1e-4 × 10: |w| stays well under 0.2
            assert float(w[1].abs().max()) < 0.2 and float(b[1].abs()) < 0.2
        else:
            assert torch.equal(w[1], model[1].weight[1]) and torch.equal(b[1], model[1].bias[1])


# --- RL -----------------------------------------------------------------------------------

def salun_plan(order: str, forget: torch.Tensor, retain: torch.Tensor, labels: torch.Tensor,
               classes: int, batch_size: int):
    def uniform(rows: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return rl.uniform_labels(len(rows), classes, g, rows.device)
    make = rl.forget_first_plan if order == "forget_first" else rl.mixed_plan
    return make(forget, retain, labels, uniform, batch_size)


@pytest.mark.parametrize("order", ["forget_first", "mixed"])
def test_rl_salun_labels_are_uniform_over_all_classes_and_redrawn(order: str) -> None:
    classes, n = 4, 4000
    labels = torch.zeros(n + 100, dtype=torch.long)              # D_f: all of class 0
    forget, retain = torch.arange(n), torch.arange(n, n + 100)
    plan = salun_plan(order, forget, retain, labels, classes, 64)
    g = torch.Generator().manual_seed(0)
    epochs = []
    for epoch in range(2):
        drawn = torch.full((n + 100,), -1)
        for rows, batch_labels in plan(epoch, g):
            drawn[rows] = batch_labels
        epochs.append(drawn)
    share = torch.bincount(epochs[0][forget], minlength=classes) / n
    assert torch.all((share > 0.22) & (share < 0.28)), share       # the true class 0 included
    assert torch.equal(epochs[0][retain], labels[retain])        # D_r keeps its labels
    same = (epochs[0][forget] == epochs[1][forget]).float().mean()
    assert 0.2 < same < 0.3                                       # a new draw each epoch


def test_rl_forget_batches_run_before_retain_batches() -> None:
    forget, retain = torch.arange(0, 10), torch.arange(10, 33)
    labels = torch.zeros(33, dtype=torch.long)
    plan = salun_plan("forget_first", forget, retain, labels, 3, 4)
    g = torch.Generator().manual_seed(0)
    first, second = plan(0, g), plan(1, g)
    kinds = [bool((rows < 10).all()) for rows, _ in first]
    assert kinds == [True] * 3 + [False] * 6                      # ⌈10/4⌉ then ⌈23/4⌉ batches
    assert all(not (rows < 10).any() for rows, _ in first[3:])
    seen = torch.cat([rows for rows, _ in first]).sort().values
    assert torch.equal(seen, torch.arange(33))                   # each sample once per epoch
    assert not torch.equal(torch.cat([r for r, _ in first]), torch.cat([r for r, _ in second]))


def test_rl_mixed_batches_mix_forget_and_retain() -> None:
    forget, retain = torch.arange(0, 50), torch.arange(50, 200)
    plan = salun_plan("mixed", forget, retain, torch.zeros(200, dtype=torch.long), 3, 20)
    batches = plan(0, torch.Generator().manual_seed(0))
    assert sum(bool((rows < 50).any() and (rows >= 50).any()) for rows, _ in batches) >= 8


def test_rl_other_class_is_the_earlier_rl_exactly() -> None:
    x = torch.randn(40, 1, 1, 2)
    y = torch.arange(40) % 4
    forget = torch.arange(0, 40, 5)
    model = linear(2, 4, bias=True)
    ctx = context(x, y, forget, 4, dataset="digits")
    ours = rl.unlearn(copy.deepcopy(model), ctx, epochs=2, lr=0.1, labels="other_class")
    relabelled = y.clone()
    relabelled[forget] = rl.random_other_labels(y[forget], 4, ctx.seed)
    earlier = finetune(copy.deepcopy(model), ctx, torch.arange(40), epochs=2, lr=0.1,
                       labels=relabelled)
    for a, b in zip(ours.parameters(), earlier.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("dataset", "labels", "expected"), [
    ("cifar10", "salun", "forget_first"), ("svhn", "salun", "forget_first"),
    ("cifar100", "salun", "mixed"), ("digits", "salun", "forget_first"),
    ("digits", "other_class", "mixed")])
def test_rl_auto_order_is_the_references_loop(dataset: str, labels: str, expected: str) -> None:
    assert rl.loop_order(labels, "auto", dataset) == expected
    assert rl.loop_order(labels, "mixed", dataset) == "mixed"

"""Zero-shot and teacher-student unlearning (issue 11): the data-access cut, and each new
method's update pinned to a small hand-computed case of its reference's rule."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

from unlearnbench.context import AccessError, TrainEnv, method_context
from unlearnbench.data import Data
from unlearnbench.methods import bad_teacher, gkt
from unlearnbench.methods.noise import first_per_class, learn_noise, noisy_copies
from unlearnbench.runner import prepare, run
from unlearnbench.scenarios import Split
from unlearnbench.training import Recipe

from .conftest import SYNTH, make_cfg

ZERO_SHOT_METHODS = ["unsir_zero_shot", "gkt"]


def read_training_data(model: nn.Module, ctx, *, scale: float = 1.0) -> nn.Module:
    """A method that claims zero-shot access but reads the training data (for the test)."""
    ctx.data.train_x.sum()
    return model


def _env(n_per_class: int = 6, classes: int = 3, bias: bool = True) -> TrainEnv:
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = torch.randn(len(y), 1, 4, 4)
    data = Data("toy", x, y, x.clone(), y.clone(), classes)
    forget = (y == 0).nonzero().squeeze(1)
    retain = (y != 0).nonzero().squeeze(1)
    return TrainEnv(data, Split(forget, retain, (0,)), Recipe(epochs=1, batch_size=4, lr=0.1),
                    seed=0, device=torch.device("cpu"),
                    model_factory=lambda shape, k: nn.Sequential(nn.Flatten(),
                                                                 nn.Linear(16, k, bias=bias)))


# -- the access cut ----------------------------------------------------------------------------

def test_a_zero_shot_context_holds_no_data() -> None:
    env = _env()
    ctx = method_context(env, "m", "zero_shot")
    with pytest.raises(AccessError, match="zero_shot.*ctx.data"):
        _ = ctx.data
    with pytest.raises(AccessError, match="ctx.split"):
        _ = ctx.split
    assert ctx.forget_classes == (0,) and ctx.num_classes == 3 and ctx.input_shape == (1, 4, 4)
    assert ctx.build_model()(torch.zeros(2, 1, 4, 4)).shape == (2, 3)
    # build_model is no bound method of the environment: it does not carry the data along
    cells = [c.cell_contents for c in ctx.build_model.__closure__ or ()]
    assert not any(isinstance(c, TrainEnv | Data | torch.Tensor) for c in cells)


def test_a_zero_shot_method_that_reads_data_gets_a_failed_row(tmp_path: Path) -> None:
    cfg = make_cfg(*SYNTH, "method=ga", "~method.epochs", "~method.lr",
                   "method._target_=tests.test_zero_shot.read_training_data",
                   "method.runner.access=zero_shot", "allow_targets=[tests.]",
                   "eval.metrics.anamnesis=null", "eval.metrics.inversion=null",
                   results_dir=tmp_path)
    df = run(cfg, None, Console(quiet=True))
    row = df.set_index("role").loc["unlearned"]
    assert row.status == "failed" and row.access == "zero_shot"
    assert "AccessError" in row.reason and "ctx.data" in row.reason


@pytest.mark.parametrize("method", ZERO_SHOT_METHODS)
def test_zero_shot_methods_declare_it_and_run_without_data(method: str,
                                                           shared_results: Path) -> None:
    cfg = make_cfg(*SYNTH, f"method={method}", "method.pseudo_batches=3"
                   if method == "gkt" else "method.noise_steps=2", results_dir=shared_results)
    job = prepare(cfg, Console(quiet=True))
    assert job.plan.runner.access == "zero_shot"
    ctx = method_context(job.env, method, "zero_shot")  # any data read would raise
    out = job.plan.method_fn(copy.deepcopy(job.refs.get("original").model), ctx)
    assert all(torch.isfinite(p).all() for p in out.model.parameters())


# -- UNSIR and M-M ------------------------------------------------------------------------------

def _linear(weight: list[list[float]]) -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(weight))
    return model


@pytest.mark.parametrize("maximise", [True, False])
def test_noise_takes_one_adam_step_on_the_reference_loss(maximise: bool) -> None:
    """−CE(f(N), c) + λ mean_i ‖N_i‖² (UNSIR) or +CE (M-M's retain proxies): the gradient by
    hand, g_i = (∓Wᵀ(p_i − e_c) + 2λ N_i) / B, and Adam's first step moves each entry by
    lr · sign(g)."""
    w = [[1.0, -2.0], [0.5, 3.0]]
    model, lam, lr, seed, c = _linear(w), 0.1, 0.1, 5, 1
    n0 = torch.randn(3, 1, 1, 2, generator=torch.Generator().manual_seed(seed))
    noise = learn_noise(model, c, (1, 1, 2), batch=3, steps=1, lr=lr, l2=lam,
                        maximise=maximise, seed=seed)
    flat = n0.view(3, 2)
    p = torch.softmax(flat @ torch.tensor(w).T, dim=1)
    onehot = torch.tensor([0.0, 1.0])
    sign = -1.0 if maximise else 1.0
    grad = (sign * (p - onehot) @ torch.tensor(w) + 2 * lam * flat) / 3
    expected = flat - lr * torch.sign(grad)
    assert torch.allclose(noise.view(3, 2), expected, atol=1e-6)


def test_reference_noise_loader_keeps_only_channel_count_images() -> None:
    noise = torch.arange(5 * 3 * 2 * 2, dtype=torch.float32).view(5, 3, 2, 2)  # 5 images, C=3
    ref = noisy_copies(noise, copies=4, mode="reference")
    assert ref.shape == (12, 3, 2, 2)  # 4 copies x 3 (channels), not x 5 (the batch)
    assert torch.equal(ref[:3], noise[:3]) and torch.equal(ref[3:6], noise[:3])
    fixed = noisy_copies(noise, copies=4, mode="fixed")
    assert fixed.shape == (20, 3, 2, 2) and torch.equal(fixed[5:10], noise)


def test_retain_subset_is_the_first_samples_of_each_class() -> None:
    labels = torch.tensor([1, 2, 1, 1, 2, 0, 2, 1])
    retain = torch.tensor([0, 1, 2, 3, 4, 6, 7])  # class 0 (index 5) forgotten
    assert first_per_class(labels, retain, 2, 3).tolist() == [0, 1, 2, 4]


# -- Bad Teacher --------------------------------------------------------------------------------

def test_bad_teacher_loss_by_hand() -> None:
    """KL from l·softmax(T_d) + (1−l)·softmax(T_s), F.kl_div's 'mean' (÷ N·C) in the
    reference mode; d/ds = (softmax(s) − t) / (N·C)."""
    s = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]], requires_grad=True)
    competent = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    incompetent = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    is_forget = torch.tensor([1.0, 0.0])  # row 0 forget -> incompetent, row 1 -> competent
    t = torch.stack([torch.full((3,), 1 / 3), torch.softmax(competent[1], 0)])
    log_s = torch.log_softmax(s.detach(), 1)
    by_hand = float((t * (t.log() - log_s)).sum() / 6)
    loss = bad_teacher.bad_teacher_loss(s, is_forget, competent, incompetent, 1.0)
    assert math.isclose(float(loss.detach()), by_hand, rel_tol=1e-6)
    loss.backward()
    assert torch.allclose(s.grad, (torch.softmax(s.detach(), 1) - t) / 6, atol=1e-7)
    fixed = bad_teacher.bad_teacher_loss(s.detach(), is_forget, competent, incompetent, 1.0,
                                         "batchmean")
    assert math.isclose(float(fixed), by_hand * 3, rel_tol=1e-6)  # ÷ N only


def test_bad_teacher_takes_adam_steps_towards_the_mixed_teacher() -> None:
    """One batch: the student (a copy of the original, here a bias-free linear map W) moves by
    Adam's first step, lr · sign(∂L/∂W), with ∂L/∂W = ((softmax(s) − t) / (N·C))ᵀ x."""
    env = _env(n_per_class=2, classes=2, bias=False)
    ctx = method_context(env, "bad_teacher", "full")
    torch.manual_seed(0)
    student = env.build_model()
    w0 = student[1].weight.detach().clone()
    lr = 1e-3
    out = bad_teacher.unlearn(student, ctx, retain_fraction=0.99, lr=lr, batch_size=64)
    g = torch.Generator().manual_seed(bad_teacher.SALT)  # the method's retain draw
    chosen = env.split.retain[torch.randperm(2, generator=g)[:1]]  # int(0.99 * 2) = 1
    rows = torch.cat([env.split.forget, chosen])
    with torch.random.fork_rng():
        torch.manual_seed(bad_teacher.SALT)
        incompetent = env.build_model()
    x = env.data.train_x[rows].view(len(rows), -1)
    s = x @ w0.T  # the student's and the competent teacher's logits before the step
    flag = torch.tensor([[1.0], [1.0], [0.0]])
    t = flag * torch.softmax(x @ incompetent[1].weight.detach().T, 1) \
        + (1 - flag) * torch.softmax(s, 1)
    grad = ((torch.softmax(s, 1) - t) / (3 * 2)).T @ x
    assert torch.allclose(out.model[1].weight, w0 - lr * torch.sign(grad), atol=1e-6)


# -- GKT ----------------------------------------------------------------------------------------

def test_gate_drops_samples_the_teacher_puts_in_a_forgotten_class() -> None:
    # softmax rows: p(class 0) = 0.0066 (kept), 0.5 (dropped); class 2 forgotten as well
    logits = torch.tensor([[0.0, 5.0, 0.0], [0.0, 0.0, -100.0], [-10.0, 0.0, -4.0]])
    probs = torch.softmax(logits, 1)
    keep = gkt.gate(logits, (0,), 0.01)
    assert keep.tolist() == (probs[:, 0] <= 0.01).tolist() == [True, False, True]
    assert gkt.gate(logits, (0, 2), 0.01).tolist() == [True, False, False]  # p(2) = 0.0180


def test_student_loss_is_kl_plus_beta_attention_by_hand() -> None:
    """attention(x) = normalise(mean_c x²) per sample; diff = mean((a_s − a_t)²);
    loss = F.kl_div(log softmax s, softmax t) ('mean') + β · Σ diff."""
    s_map = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # (1, 2 channels, 1, 2)
    t_map = torch.tensor([[[[0.0, 1.0]], [[0.0, 1.0]]]])
    a_s = torch.tensor([5.0, 2.0]) / math.sqrt(29.0)  # channel means of squares: (1+9)/2, 4/2
    a_t = torch.tensor([0.0, 1.0])
    diff = float(((a_s - a_t) ** 2).mean())
    assert math.isclose(float(gkt.attention_diff(s_map, t_map)), diff, rel_tol=1e-6)
    s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    pt = torch.softmax(t, 1)
    kl = float((pt * (pt.log() - torch.log_softmax(s, 1))).sum() / 2)
    loss = gkt.student_loss(s, [s_map], t, [t_map], temperature=1.0, beta=250.0)
    assert math.isclose(float(loss), kl + 250.0 * diff, rel_tol=1e-6)
    assert math.isclose(float(gkt.divergence(s, t, 1.0)), kl, rel_tol=1e-6)


@pytest.mark.parametrize(("shape", "base"), [((1, 28, 28), (8, 8)), ((3, 32, 32), (8, 8)),
                                             ((1, 8, 8), (3, 3))])
def test_generator_matches_the_reference_sizes(shape: tuple[int, int, int],
                                               base: tuple[int, int]) -> None:
    """The reference: 8x8 -> 32x32, then a 7x7 conv to 28x28 (1 channel) or a 3x3 conv
    (3 channels); other sizes get the smallest base that covers them."""
    gen = gkt.Generator(16, shape, channels=8)
    assert gen.base == base
    assert gen(torch.randn(2, 16)).shape == (2, *shape)


def test_gkt_logs_the_student_through_the_checkpoint_sink() -> None:
    env = _env(classes=3)
    env = TrainEnv(env.data, env.split, env.recipe, 0, env.device,
                   lambda shape, k: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(),
                                                  nn.Flatten(), nn.Linear(32, k)))
    seen: list[tuple[int, dict[str, float]]] = []
    ctx = method_context(env, "gkt", "zero_shot",
                         checkpoint=lambda step, model, **info: seen.append((step, info)))
    torch.manual_seed(0)
    out = gkt.unlearn(env.build_model(), ctx, pseudo_batches=4, batch_size=8,
                      generator_channels=4, log_every=2, threshold=1.0)
    assert [step for step, _ in seen] == [0, 2, 4]
    assert all(0 <= info["gate_pass_rate"] <= 1 for _, info in seen)
    assert out.extras["pseudo_batches"] == 4


@pytest.mark.parametrize("method", ["unsir", "unsir_zero_shot", "bad_teacher", "gkt"])
def test_search_space_ends_are_valid_settings(method: str, tmp_path: Path) -> None:
    """conf/tune/<method>.yaml: each end of every interval, and every choice, passes the
    method's typed ranges (one key at a time, the others at their defaults)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from unlearnbench.validation import validate

    from .conftest import CONF_DIR

    params = OmegaConf.load(CONF_DIR / "tune" / f"{method}.yaml").hydra.sweeper.params
    parser = OverridesParser.create()
    for override in parser.parse_overrides([f"{k}={v}" for k, v in params.items()]):
        key = override.get_key_element()
        assert key.startswith("method.")
        if override.is_interval_sweep():
            ends = [override.value().start, override.value().end]
        else:
            ends = list(override.sweep_string_iterator())
        for value in ends:
            if isinstance(value, float) and "int(" in str(params[key]):
                value = int(value)
            validate(make_cfg(f"method={method}", f"{key}={value}", results_dir=tmp_path))


def test_a_glob_sweep_skips_class_wise_methods_on_sample_scenarios(capsys) -> None:
    from unlearnbench.errors import NotApplicable
    from unlearnbench.preflight import preflight

    from .conftest import CONF_DIR

    checked = preflight(["-m", "method=unsir,ft", "scenario=classwise,random",
                         "dataset=synthetic"], CONF_DIR)
    assert checked.jobs == 4 and checked.not_applicable == 1
    assert "1 of 4 sweep job(s) not applicable" in capsys.readouterr().out
    with pytest.raises(NotApplicable, match="scenario=random.*classwise"):
        preflight(["-m", "method=unsir", "scenario=random", "dataset=synthetic"], CONF_DIR)
    with pytest.raises(NotApplicable):  # a single run: bad input
        preflight(["method=unsir", "scenario=random", "dataset=synthetic"], CONF_DIR)

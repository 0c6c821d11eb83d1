"""The generative unlearning methods pinned to hand-computed cases of the references' rules.

A toy model with a two-parameter encoder (w, b) and a one-parameter decoder d: an image's
feature is s = w * m + b with m its mean pixel, its output d * s and its training loss
(d * s - m)^2. Images are constant, so m is their value.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from unlearnbench.errors import ConfigError
from unlearnbench.generative.base import Draw, InpaintingModel, noise_images
from unlearnbench.generative.methods.i2i_encoder import i2i_encoder, i2i_objective
from unlearnbench.generative.methods.max_loss import max_loss_objective
from unlearnbench.generative.methods.noisy_label import noisy_label_objective
from unlearnbench.generative.methods.random_encoder import random_encoder_objective
from unlearnbench.generative.methods.retain_label import (
    retain_label,
    retain_label_objective,
    tiled_retain,
)
from unlearnbench.generative.unlearning import Batch, UnlearnRecipe, run_unlearning

FORGET, RETAIN = (0.2, 0.4), (0.6, 0.8)
ALPHA = 0.5


class ToyEncoder(nn.Module):
    def __init__(self, w: float, b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([w]))
        self.b = nn.Parameter(torch.tensor([b]))


class Toy(InpaintingModel):
    family = "mage"

    def __init__(self, w: float, b: float, d: float) -> None:
        super().__init__()
        self.toy_encoder = ToyEncoder(w, b)
        self.d = nn.Parameter(torch.tensor([d]))

    @property
    def encoder(self) -> nn.Module:
        return self.toy_encoder

    def draw(self, x: torch.Tensor, g: torch.Generator) -> Draw:
        return Draw(mask=torch.zeros_like(x))

    def _feature(self, x: torch.Tensor) -> torch.Tensor:
        return self.toy_encoder.w * x.mean(dim=(1, 2, 3))[:, None] + self.toy_encoder.b

    def encode(self, x: torch.Tensor, draw: Draw) -> list[torch.Tensor]:
        return [self._feature(x)]

    def outputs(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        return self.d * self._feature(x)

    def loss(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        return (self.outputs(x, draw)[:, 0] - x.mean(dim=(1, 2, 3))).pow(2)

    def noisy_label_loss(self, x, draw, g, stats=None) -> torch.Tensor:
        # toy random target: the mean pixel of the statistics batch
        ref = x if stats is None else stats
        return (self.outputs(x, draw)[:, 0] - ref.mean()).pow(2)


def images(values: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(values).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).clone()


def toy_batch(retain: tuple[float, ...] = RETAIN) -> Batch:
    x = torch.cat([images(FORGET), images(retain)])
    return Batch(x=x, draw=Draw(mask=torch.zeros_like(x)), n_forget=len(FORGET))


def student_teacher(family: str = "mage") -> tuple[Toy, Toy]:
    teacher = Toy(w=1.0, b=0.0, d=1.5)
    student = Toy(w=2.0, b=0.5, d=1.0)
    teacher.family = student.family = family
    return student, teacher


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def loss_and_grads(objective, family: str = "mage", seed: int = 0,
                   retain: tuple[float, ...] = RETAIN):
    student, teacher = student_teacher(family)
    loss = objective(student, teacher, toy_batch(retain), torch.Generator().manual_seed(seed))
    loss.backward()
    return (loss.item(), student.toy_encoder.w.grad.item(), student.toy_encoder.b.grad.item(),
            None if student.d.grad is None else student.d.grad.item())


def feature(w: float, b: float, m: float) -> float:
    return w * m + b


def test_i2i_pulls_forget_to_the_noise_image_and_retain_to_the_original() -> None:
    # constant noise: an image of the whole batch's mean pixel, 0.5; its teacher feature 1*0.5+0
    target = feature(1.0, 0.0, mean([*FORGET, *RETAIN]))
    forget = [feature(2.0, 0.5, m) - target for m in FORGET]
    retain = [feature(2.0, 0.5, m) - feature(1.0, 0.0, m) for m in RETAIN]
    expected = mean([r**2 for r in retain]) + ALPHA * mean([f**2 for f in forget])
    grad_w = mean([2 * r * m for r, m in zip(retain, RETAIN, strict=True)]) \
        + ALPHA * mean([2 * f * m for f, m in zip(forget, FORGET, strict=True)])
    grad_b = mean([2 * r for r in retain]) + ALPHA * mean([2 * f for f in forget])
    loss, gw, gb, gd = loss_and_grads(i2i_objective(ALPHA, "constant"))
    assert loss == pytest.approx(expected) and loss == pytest.approx(1.65)
    assert (gw, gb) == (pytest.approx(grad_w), pytest.approx(grad_b))
    assert gd is None  # the decoder is not even in the graph


def test_i2i_gaussian_noise_uses_the_batch_statistics() -> None:
    x = toy_batch().x
    noise = noise_images(x[:2], "gaussian", torch.Generator().manual_seed(3), stats=x)
    z = torch.randn(noise.shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(noise, (z * x.std() + x.mean()).clamp(0, 1))
    with pytest.raises(ConfigError, match="method.noise"):
        noise_images(x, "pink", torch.Generator())


def test_max_loss_descends_on_retain_and_ascends_on_forget() -> None:
    def out(m: float) -> float:
        return 1.0 * feature(2.0, 0.5, m)
    expected = mean([(out(m) - m) ** 2 for m in RETAIN]) \
        - ALPHA * mean([(out(m) - m) ** 2 for m in FORGET])
    grad_d = mean([2 * (out(m) - m) * feature(2.0, 0.5, m) for m in RETAIN]) \
        - ALPHA * mean([2 * (out(m) - m) * feature(2.0, 0.5, m) for m in FORGET])
    loss, _, _, gd = loss_and_grads(max_loss_objective(ALPHA))
    assert loss == pytest.approx(expected) and gd == pytest.approx(grad_d)


def test_noisy_label_targets_come_from_the_whole_batch() -> None:
    def out(m: float) -> float:
        return feature(2.0, 0.5, m)
    batch_mean = mean([*FORGET, *RETAIN])
    expected = mean([(out(m) - m) ** 2 for m in RETAIN]) \
        + ALPHA * mean([(out(m) - batch_mean) ** 2 for m in FORGET])
    loss, *_ = loss_and_grads(noisy_label_objective(ALPHA))
    assert loss == pytest.approx(expected)


@pytest.mark.parametrize("mode", ["reference", "fixed"])
def test_retain_label(mode: str) -> None:
    # Both retain images alike, so every tiled target is the teacher's output for them.
    retain_images = (0.6, 0.6)
    teacher_out = 1.5 * feature(1.0, 0.0, 0.6)
    student_out = {m: 1.0 * feature(2.0, 0.5, m) for m in (*FORGET, 0.6)}
    retain = (student_out[0.6] - teacher_out) ** 2
    # reference (MAGE `engine_baseline.compute_loss`): the forget term weights retain images
    hit = retain_images if mode == "reference" else FORGET
    expected = retain + ALPHA * mean([(student_out[m] - teacher_out) ** 2 for m in hit])
    loss, *_ = loss_and_grads(retain_label_objective(ALPHA, mode), retain=retain_images)
    assert loss == pytest.approx(expected)
    # the Palette fork weights correctly: both modes apply the forget term to forget images
    fixed = retain + ALPHA * mean([(student_out[m] - teacher_out) ** 2 for m in FORGET])
    loss, *_ = loss_and_grads(retain_label_objective(ALPHA, mode), family="palette",
                              retain=retain_images)
    assert loss == pytest.approx(fixed)


def test_tiled_retain_gives_every_image_a_retain_output() -> None:
    batch = toy_batch()
    outputs = torch.arange(4.0)[:, None]  # rows 2 and 3 are the retain images
    for seed in range(5):
        tiled = tiled_retain(outputs, batch, torch.Generator().manual_seed(seed))
        assert set(tiled[:, 0].tolist()) <= {2.0, 3.0}
        assert sorted(tiled[:, 0].tolist()) == [2.0, 2.0, 3.0, 3.0]  # each retain output twice


@pytest.mark.parametrize("mode", ["reference", "fixed"])
def test_random_encoder(mode: str) -> None:
    guide = torch.tensor([feature(1.0, 0.0, m) for m in (*FORGET, *RETAIN)])[:, None]
    z = torch.randn(guide.shape, generator=torch.Generator().manual_seed(7))
    noise = (z * guide.std() + guide.mean())[:, 0].tolist()
    student = [feature(2.0, 0.5, m) for m in (*FORGET, *RETAIN)]
    retain = mean([(student[i] - guide[i, 0].item()) ** 2 for i in (2, 3)])
    rows = (2, 3) if mode == "reference" else (0, 1)
    expected = retain + ALPHA * mean([(student[i] - noise[i]) ** 2 for i in rows])
    loss, *_ = loss_and_grads(random_encoder_objective(ALPHA, mode), seed=7)
    assert loss == pytest.approx(expected)


def test_one_adam_step_moves_only_the_encoder() -> None:
    """run_unlearning: one batch (2 forget + 2 retain), Adam's first step is -lr * sign(g)."""
    student, teacher = student_teacher()
    _, grad_w, grad_b, _ = loss_and_grads(i2i_objective(ALPHA, "constant"))
    recipe = UnlearnRecipe(epochs=1, batch_size=4, lr=0.1, optimizer="adam", weight_decay=0.0,
                           betas=(0.9, 0.999), cosine=False)
    info = i2i_encoder(student, teacher, images(FORGET), images(RETAIN), alpha=ALPHA,
                       noise="constant", recipe=recipe, seed=0)
    assert info["steps"] == 1
    sign = torch.sign(torch.tensor([grad_w, grad_b]))
    assert student.toy_encoder.w.item() == pytest.approx(2.0 - 0.1 * sign[0].item())
    assert student.toy_encoder.b.item() == pytest.approx(0.5 - 0.1 * sign[1].item())
    assert student.d.item() == 1.0 and teacher.toy_encoder.w.item() == 1.0


def test_mage_schedule_warms_up_then_decays() -> None:
    recipe = UnlearnRecipe(epochs=6, batch_size=128, lr=5e-5, warmup_epochs=5)
    assert recipe.lr_at(0) == 0 and recipe.lr_at(2.5) == pytest.approx(2.5e-5)
    assert recipe.lr_at(5) == pytest.approx(5e-5) and recipe.lr_at(5.5) == pytest.approx(2.5e-5)


def test_bad_settings_are_config_errors() -> None:
    student, teacher = student_teacher()
    with pytest.raises(ConfigError, match="method.batch_size"):
        UnlearnRecipe(epochs=1, batch_size=3, lr=0.1)
    with pytest.raises(ConfigError, match="method.optimizer"):
        UnlearnRecipe(epochs=1, batch_size=4, lr=0.1, optimizer="sgd")
    recipe = UnlearnRecipe(epochs=1, batch_size=4, lr=0.1)
    with pytest.raises(ConfigError, match="method.mode"):
        retain_label(student, teacher, images(FORGET), images(RETAIN), alpha=0.1,
                     mode="buggy", recipe=recipe, seed=0)
    with pytest.raises(ConfigError, match="method.noise"):
        i2i_encoder(student, teacher, images(FORGET), images(RETAIN), alpha=0.1, noise="pink",
                    recipe=recipe, seed=0)
    with pytest.raises(ConfigError, match="method.epochs"):
        recipe.with_overrides(epochs=0)


def test_forget_images_are_capped_and_epochs_count_forget_batches() -> None:
    student, teacher = student_teacher()
    forget = images(tuple(0.1 * i for i in range(10)))
    recipe = UnlearnRecipe(epochs=2, batch_size=4, lr=0.01, max_forget=4)
    info = run_unlearning(student, copy.deepcopy(teacher), forget, images(RETAIN),
                          i2i_objective(ALPHA, "constant"), recipe,
                          list(student.encoder.parameters()), seed=0)
    assert info["steps"] == 4  # 2 epochs of 4 capped forget images, 2 per batch

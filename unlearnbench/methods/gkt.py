"""Gated Knowledge Transfer (GKT), the second zero-shot method of Chundawat et al., "Zero-Shot
Machine Unlearning" (IEEE TIFS 2023): a generator is trained to maximise the KL divergence
between the original (teacher) and a randomly initialised student on its pseudo-samples; the
student is trained to match the teacher on them (KL + β · attention transfer). A band-pass
gate drops every pseudo-sample on which the teacher's probability of a forgotten class exceeds
``threshold``, so the student never learns what the teacher knows of those classes.

Reference: ayushkumartarun/zero-shot-unlearning (`unlearn.py`: `Generator`, `LearnableLoader`,
`KT_loss_generator`, `KT_loss_student`, `attention`; `1_class_mnist_allcnn.ipynb`: the loop).
Its settings are the defaults, but for the budget (below): z ~ N(0, I) of 128 dims, each z
reused for 1 generator step then 10 student steps (`n_repeat_batch` = 11: a *pseudo-batch*), Adam
lr 1e-3 for both, gradient norms clipped at 5, T = 1, β = 250 over the attention maps of
every block the model names (`FEATURE_BLOCKS`; none for an MLP, so no attention term there),
gate 0.01, the generator reset to an earlier copy after 100 consecutive empty batches.

Departures, each forced or documented:
- Budget: the reference runs 4,000 pseudo-batches (44,000 steps of batch 256) with a
  128-channel generator; the defaults here are a CPU scale-down: 20 pseudo-batches of 64 with
  a 16-channel generator (``pseudo_batches``, ``batch_size``, ``generator_channels``).
- Stopping: the reference picks nothing (it trains the full budget; its notebook shows the
  forgotten class leaking back, D_f test accuracy 0 -> 76 % between pseudo-batches 750 and
  900). Here the rule uses no data: stop after ``pseudo_batches``, or earlier when the gate's
  pass rate over the last ``log_every`` pseudo-batches falls below ``min_pass_rate`` (0 = off):
  a generator that keeps proposing forget-class samples is probing the forgotten region.
- Schedules: the reference steps ReduceLROnPlateau (factor 0.5, patience 2, every 50
  pseudo-batches) on the student's retain *test* loss, which a zero-shot method cannot see,
  and the generator's on a constant (the student's initial test loss), which halves its rate
  every 150 pseudo-batches. Here: the student's rate is constant; the generator's halves every
  ``generator_halving`` pseudo-batches (150, the reference's effective schedule; 0 = never).
- Logging: every ``log_every`` (50) pseudo-batches the student goes to ``ctx.checkpoint``;
  the runner scores those copies on D_f / D_r *after* the method has finished and writes
  `checkpoints.csv` into the job folder (evaluation only, never fed back).
- ``mode: reference`` (default) leaves the student in eval mode throughout, as the
  reference's evaluation calls do (its batch norm keeps its initial statistics); ``fixed``
  trains it in training mode. The teacher is in eval mode, the generator in training mode.
- An empty gated batch draws a new z at once (the reference advances its loader's counter,
  which redraws z after a cycle).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..masks import apply_masks
from ..models import feature_blocks
from ..params import (
    BatchSize,
    LearningRate,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    UnitInterval,
)
from ..training import DivergenceError
from .base import MethodContext, MethodOutput

SALT = 0x6C7
EMPTY_BATCHES_BEFORE_RESET = 100


class Generator(nn.Module):
    """The reference generator: z -> Linear -> 128 x s x s -> (upsample, conv, BN, LeakyReLU)
    x 2 -> conv to C channels (kernel 7 for 1 channel, 3 otherwise, as the reference) -> BN.
    s is chosen so the output covers the input size (8 for 28x28 and 32x32 inputs, as the
    reference); a larger output is centre-cropped."""

    def __init__(self, z_dim: int, shape: tuple[int, int, int], channels: int = 128) -> None:
        super().__init__()
        c, h, w = shape
        kernel = 7 if c == 1 else 3
        grow = kernel - 3  # the last conv (padding 1) shrinks its input by this much
        self.base = (max(1, math.ceil((h + grow) / 4)), max(1, math.ceil((w + grow) / 4)))
        self.channels, self.shape = channels, shape
        half = max(1, channels // 2)
        self.project = nn.Linear(z_dim, channels * self.base[0] * self.base[1])
        self.layers = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(channels, channels, 3, stride=1, padding=1),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(channels, half, 3, stride=1, padding=1),
            nn.BatchNorm2d(half),
            nn.LeakyReLU(0.2),
            nn.Conv2d(half, c, kernel, stride=1, padding=1),
            nn.BatchNorm2d(c, affine=True),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.project(z).view(len(z), self.channels, *self.base))
        _, h, w = self.shape
        top, left = (out.shape[2] - h) // 2, (out.shape[3] - w) // 2
        return out[:, :, top:top + h, left:left + w]


def attention(x: torch.Tensor) -> torch.Tensor:
    """Attention map (Zagoruyko & Komodakis): channel mean of x², flattened, unit ℓ2 norm."""
    return F.normalize(x.pow(2).mean(1).view(x.size(0), -1))


def attention_diff(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (attention(x) - attention(y)).pow(2).mean()


def divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               temperature: float) -> torch.Tensor:
    """The reference's forward KL: F.kl_div with its default 'mean' reduction (÷ N·C; written
    as sum ÷ numel, which PyTorch does not warn about)."""
    log_s = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_s, F.softmax(teacher_logits / temperature, dim=1),
                    reduction="sum") / log_s.numel()


def student_loss(student_logits: torch.Tensor, student_maps: list[torch.Tensor],
                 teacher_logits: torch.Tensor, teacher_maps: list[torch.Tensor],
                 temperature: float, beta: float) -> torch.Tensor:
    """`KT_loss_student`: KL + β · Σ_blocks attention_diff."""
    loss = divergence(student_logits, teacher_logits, temperature)
    for s, t in zip(student_maps, teacher_maps, strict=True):
        loss = loss + beta * attention_diff(s, t)
    return loss


def gate(teacher_logits: torch.Tensor, forget_classes: tuple[int, ...],
         threshold: float) -> torch.Tensor:
    """The band-pass filter: keep a pseudo-sample only if the teacher gives every forgotten
    class a probability of at most ``threshold``."""
    probs = torch.softmax(teacher_logits.detach(), dim=1)[:, list(forget_classes)]
    return (probs <= threshold).all(dim=1)


@contextmanager
def capture(model: nn.Module, blocks: tuple[str, ...]) -> Iterator[list[torch.Tensor]]:
    """The outputs of ``blocks`` during the forward passes inside the block (cleared by the
    caller per pass)."""
    maps: list[torch.Tensor] = []
    hooks = [model.get_submodule(b).register_forward_hook(lambda m, i, o: maps.append(o))
             for b in blocks]
    try:
        yield maps
    finally:
        for h in hooks:
            h.remove()


def forward_with_maps(model: nn.Module, maps: list[torch.Tensor], x: torch.Tensor
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    maps.clear()
    logits = model(x)
    return logits, list(maps)


def _check(loss: torch.Tensor, what: str, n: int) -> None:
    if not math.isfinite(loss.item()):
        raise DivergenceError(f"gkt: non-finite {what} loss at pseudo-batch {n}")


def unlearn(model: nn.Module, ctx: MethodContext, *, pseudo_batches: PositiveInt = 20,
            batch_size: BatchSize = 64, z_dim: PositiveInt = 128,
            generator_channels: PositiveInt = 16, generator_lr: LearningRate = 1e-3,
            student_lr: LearningRate = 1e-3, generator_steps: PositiveInt = 1,
            student_steps: PositiveInt = 10, beta: NonNegativeFloat = 250.0,
            temperature: PositiveFloat = 1.0, threshold: UnitInterval = 0.01,
            grad_clip: PositiveFloat = 5.0, generator_halving: NonNegativeInt = 150,
            log_every: PositiveInt = 50, min_pass_rate: UnitInterval = 0.0,
            mode: Literal["reference", "fixed"] = "reference") -> MethodOutput:
    teacher = model.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed + SALT)
        student = ctx.build_model()
        generator = Generator(z_dim, ctx.input_shape, generator_channels).to(ctx.device)
    apply_masks(student, ctx.masks)
    student.train(mode == "fixed")
    generator.train()
    g = torch.Generator().manual_seed(ctx.seed + SALT)
    opt_g = torch.optim.Adam(generator.parameters(), lr=generator_lr)
    opt_s = torch.optim.Adam(student.parameters(), lr=student_lr)
    blocks = feature_blocks(student)
    cycle = generator_steps + student_steps
    saved = [copy.deepcopy(generator.state_dict())]  # the generator every log_every
    idx = n = empty = 0
    passed = seen = 0
    pass_rate = math.nan

    def draw() -> torch.Tensor:
        return torch.randn(batch_size, z_dim, generator=g).to(ctx.device)

    z = draw()
    with capture(student, blocks) as s_maps, capture(teacher, blocks) as t_maps:
        while n < pseudo_batches:
            if idx % cycle == 0 and empty == 0:
                z = draw()
            x = generator(z)
            with torch.no_grad():
                keep = gate(teacher(x), ctx.forget_classes, threshold)
            passed, seen = passed + int(keep.sum()), seen + len(keep)
            x = x[keep]
            if len(x) == 0:
                empty += 1
                if empty > EMPTY_BATCHES_BEFORE_RESET:  # the reference's reset
                    generator.load_state_dict(saved[max(0, len(saved) - 2)])
                    empty = 0
                z = draw()
                continue
            empty = 0
            if idx % cycle < generator_steps:  # maximise the teacher-student disagreement
                loss = -divergence(student(x), teacher(x), temperature)
                _check(loss, "generator", n)
                opt_g.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(generator.parameters(), grad_clip)
                opt_g.step()
            else:  # the student imitates the teacher on the gated pseudo-samples
                x = x.detach()
                with torch.no_grad():
                    t_logits, t_feats = forward_with_maps(teacher, t_maps, x)
                s_logits, s_feats = forward_with_maps(student, s_maps, x)
                loss = student_loss(s_logits, s_feats, t_logits, t_feats, temperature, beta)
                _check(loss, "student", n)
                opt_s.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(student.parameters(), grad_clip)
                opt_s.step()
                apply_masks(student, ctx.masks)
            if (idx + 1) % cycle == 0:
                if n % log_every == 0:
                    pass_rate = passed / max(seen, 1)
                    passed = seen = 0
                    ctx.checkpoint(n, student, gate_pass_rate=pass_rate)
                    saved.append(copy.deepcopy(generator.state_dict()))
                    if n > 0 and pass_rate < min_pass_rate:  # the data-free stopping rule
                        n += 1
                        break
                n += 1
                if generator_halving and n % generator_halving == 0:
                    for group in opt_g.param_groups:
                        group["lr"] *= 0.5
            idx += 1
    student.eval()
    ctx.checkpoint(n, student, gate_pass_rate=pass_rate)
    return MethodOutput(student, extras={"pseudo_batches": float(n),
                                         "gate_pass_rate": float(pass_rate)})

"""MI_success: a model-inversion check of class-wise forgetting (zero-shot unlearning paper,
Chundawat et al., IEEE TIFS 2023, which shows inversions of the forgotten class).

For each forgotten class c, ``restarts`` inputs start from small seeded Gaussian noise (the same
for every model of a job) and are optimised with Adam to maximise the model's probability of c
under two image priors:

    min_x  CE(f(x), c) + tv · TV(x) + l2 · mean(x²),   TV(x) = mean(Δ_h x)² + mean(Δ_w x)²

(squared total variation: smooth images; ℓ2: bounded contrast). An independent judge
classifier (``eval.judge``: another architecture and seed, trained on all of D and cached)
then labels the inversions; MI_success = 100 · share of them the judge calls c. A model that
still holds the class yields recognisable inversions; the retrain's value is the reference.
The inversions go to the job folder as one PNG grid (original, retrain, unlearned rows).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..context import TrainEnv
from ..params import LearningRate, NonNegativeFloat, PositiveInt

SALT = 0x1A7E  # the inversions' starting noise: its own random stream


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Squared total variation: mean squared difference of vertical and horizontal
    neighbours."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).mean() if x.shape[2] > 1 else x.new_zeros(())
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).mean() if x.shape[3] > 1 else x.new_zeros(())
    return dh + dw


class BatchNormPrior:
    """DeepInversion's feature prior (Yin et al., CVPR 2020): the batch statistics of every
    BatchNorm layer's input should match its running statistics, Σ ‖μ − μ_run‖ + ‖σ² − σ²_run‖.
    Zero for a model without batch norm."""

    def __init__(self, model: nn.Module) -> None:
        self.terms: list[torch.Tensor] = []
        self.hooks = [m.register_forward_hook(self._hook) for m in model.modules()
                      if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None]

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], _: torch.Tensor) -> None:
        x = inputs[0]
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
        self.terms.append(torch.norm(mean - module.running_mean, 2)
                          + torch.norm(var - module.running_var, 2))

    def pop(self, like: torch.Tensor) -> torch.Tensor:
        total = torch.stack(self.terms).sum() if self.terms else like.new_zeros(())
        self.terms = []
        return total

    def close(self) -> None:
        for h in self.hooks:
            h.remove()


def invert(model: nn.Module, targets: torch.Tensor, shape: tuple[int, ...], *, steps: int,
           lr: float, tv: float, l2: float, seed: int, jitter: int = 0,
           bn: float = 0.0) -> torch.Tensor:
    """Inputs optimised to be classified as ``targets`` (one per row) under the priors; with
    ``jitter`` each step sees the batch rolled by up to that many pixels (a random shift per
    step, as in DeepInversion), so no single-pixel pattern can carry the class."""
    g = torch.Generator().manual_seed(seed)
    device = targets.device
    x = (0.1 * torch.randn(len(targets), *shape, generator=g)).to(device).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    model.eval()
    prior = BatchNormPrior(model) if bn > 0 else None
    try:
        for _ in range(steps):
            view = x
            if jitter:
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g))
                view = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(view), targets) + tv * total_variation(x) \
                + l2 * x.pow(2).mean()
            if prior is not None:
                loss = loss + bn * prior.pop(loss)
            opt.zero_grad(set_to_none=True)
            (grad,) = torch.autograd.grad(loss, [x])  # the model's weights stay untouched
            x.grad = grad
            opt.step()
    finally:
        if prior is not None:
            prior.close()
    return x.detach()


def inversion_success(model: nn.Module, env: TrainEnv, batch_size: int, *,
                      restarts: PositiveInt = 8, steps: PositiveInt = 200,
                      lr: LearningRate = 0.05, tv: NonNegativeFloat = 0.01,
                      l2: NonNegativeFloat = 0.001) -> dict[str, float]:
    """MI_success (percent) for class-wise forgetting; NaN otherwise."""
    classes = list(env.split.forget_classes)
    if not classes:
        return {"MI_success": math.nan}
    device = env.data.train_x.device
    targets = torch.tensor(classes, device=device).repeat_interleave(restarts)
    x = invert(model, targets, env.data.input_shape, steps=steps, lr=lr, tv=tv, l2=l2,
               seed=env.seed * 1_000_003 + SALT)
    judge = env.reference_model("judge")
    judge.eval()
    with torch.no_grad():
        judged = judge(x).argmax(1)
    if env.artifacts is not None:
        env.artifacts["mi_inversions"] = x.cpu().numpy()
    return {"MI_success": 100.0 * float((judged == targets).float().mean())}


def inversion_grid(by_role: Mapping[str, np.ndarray]) -> bytes:
    """A PNG: one row of inversions per role (original, retrain, unlearned), each image scaled
    to its own range, the first channel of multi-channel images as RGB when there are 3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roles = list(by_role)
    cols = max(len(a) for a in by_role.values())
    fig, axes = plt.subplots(len(roles), cols, figsize=(1.2 * cols, 1.3 * len(roles)),
                             squeeze=False)
    for r, role in enumerate(roles):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(by_role[role]):
                continue
            img = by_role[role][c]
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
            ax.imshow(np.transpose(img, (1, 2, 0)) if img.shape[0] == 3 else img[0],
                      cmap=None if img.shape[0] == 3 else "gray")
        axes[r][0].set_title(role, fontsize=8, loc="left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()

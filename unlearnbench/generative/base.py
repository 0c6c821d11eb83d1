"""What every inpainting model offers the training loop, the unlearning methods and the metrics.

A *draw* is the randomness of one training step (mask, and for diffusion the noise level and
noise): the unlearning methods evaluate the model being unlearned and its frozen original
under the same draw, as the references do (MAGE passes its token masks to the teacher; Palette
feeds both U-Nets the same noisy input).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from ..errors import ConfigError
from .data import training_masks

NOISES = ("gaussian", "uniform", "constant")


@dataclass(frozen=True)
class Draw:
    mask: torch.Tensor                      # (B, 1, H, W), 1 = generate
    gammas: torch.Tensor | None = None      # diffusion: noise level per image (B,)
    noise: torch.Tensor | None = None       # diffusion: the noise to predict (B, 1, H, W)
    cond_noise: torch.Tensor | None = None  # diffusion: fills the hole of the condition

    def rows(self, index: torch.Tensor) -> Draw:
        """The same draw for a selection (or reordering) of the batch's images."""
        picked = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: v[index] for k, v in picked.items() if v is not None})


def noise_images(x: torch.Tensor, kind: str, g: torch.Generator,
                 stats: torch.Tensor | None = None) -> torch.Tensor:
    """The i2i method's stand-in for a forget image (MAGE fork, `engine_unlearn.py`): Gaussian
    noise with the pixel mean and std of ``stats`` (the whole batch in the reference; ``x`` by
    default) clamped to [0, 1], uniform noise in [0, 1], or that mean everywhere."""
    stats = x if stats is None else stats
    if kind == "gaussian":
        z = torch.randn(x.shape, generator=g).to(x.device)
        return (z * stats.std() + stats.mean()).clamp(0.0, 1.0)
    if kind == "uniform":
        return torch.rand(x.shape, generator=g).to(x.device)
    if kind == "constant":
        return torch.full_like(x, float(stats.mean()))
    raise ConfigError("method.noise", kind, ", ".join(NOISES))


def check_noise(model: type[InpaintingModel] | InpaintingModel, noise: str) -> None:
    """Validate the i2i method's ``noise`` for a model (class or instance) before training."""
    if noise not in model.noises:
        raise ConfigError("method.noise", noise, ", ".join(model.noises))


class InpaintingModel(nn.Module):
    """Interface of the three generators. ``encoder`` holds the parameters the i2i method
    updates; ``stages`` are trained one after the other (the VQ model first learns its
    tokenizer)."""

    stages: tuple[str, ...] = ("model",)
    family: str = ""  # whose unlearning recipe applies: "mage" or "palette"
    noises: tuple[str, ...] = NOISES  # the i2i method's noise options this model supports

    @property
    def encoder(self) -> nn.Module:
        raise NotImplementedError

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def draw(self, x: torch.Tensor, g: torch.Generator) -> Draw:
        return Draw(mask=training_masks(len(x), g).to(x.device))

    def training_loss(self, x: torch.Tensor, g: torch.Generator, stage: str) -> torch.Tensor:
        return self.loss(x, self.draw(x, g)).mean()

    def loss(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        """The generative training loss of each image under ``draw``, shape (B,)."""
        raise NotImplementedError

    def noisy_label_loss(self, x: torch.Tensor, draw: Draw, g: torch.Generator,
                         stats: torch.Tensor | None = None) -> torch.Tensor:
        """The same loss towards random targets (the `noisy_label` baseline), shape (B,);
        ``stats`` is the batch whose statistics shape the random targets (default ``x``)."""
        raise NotImplementedError

    def outputs(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        """The full model's raw output (pixels, token logits, predicted noise)."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor, draw: Draw) -> list[torch.Tensor]:
        """Encoder features of ``x`` under ``draw``: what the i2i method's L2 compares."""
        raise NotImplementedError

    def noise_target(self, x: torch.Tensor, draw: Draw, noise: str, g: torch.Generator,
                     stats: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Encoder features of the forget target: the model's features of a noise image."""
        return self.encode(noise_images(x, noise, g, stats), draw)

    def generator_parameters(self) -> list[nn.Parameter]:
        """What the full-model baselines update: the last stage's parameters (the VQ model's
        tokenizer stays frozen, as MAGE's VQGAN)."""
        return self.stage_parameters(self.stages[-1])

    def generate(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Generator,
                 steps: int | None) -> torch.Tensor:
        """Images whose masked region the model filled in (before compositing)."""
        raise NotImplementedError


@torch.no_grad()
def inpaint(model: InpaintingModel, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0,
            steps: int | None = None, batch_size: int = 256) -> torch.Tensor:
    """Fill the masked region of ``x`` (N, 1, 32, 32) in [0, 1]; the visible pixels are kept.

    ``mask`` is (1 or N, 1, 32, 32); ``steps`` is the number of decoding (VQ) or sampling
    (diffusion) steps, None for the model's default. Deterministic for a given seed.
    """
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    mask = mask.to(x.device).expand(len(x), -1, -1, -1)
    out = []
    for start in range(0, len(x), batch_size):
        xb, mb = x[start : start + batch_size], mask[start : start + batch_size]
        filled = model.generate(xb * (1.0 - mb), mb, g, steps).clamp(0.0, 1.0)
        out.append(xb * (1.0 - mb) + filled * mb)
    model.train(was_training)
    return torch.cat(out)

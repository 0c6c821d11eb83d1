"""A small conditional diffusion U-Net for inpainting, after Palette (Saharia et al., 2022) as
the i2i fork of its PyTorch port implements it: images in [-1, 1], the condition is the image
with Gaussian noise in the hole, concatenated to the noisy image; the network predicts the
noise from a continuous noise level gamma; the known region is the clean image at every step.

Sampling uses DDIM (eta = 0) on a subsequence of the training noise levels, so a few steps
suffice for evaluation; Palette samples ancestrally over 2,000 steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Draw, InpaintingModel, check_noise
from .data import training_masks

TIMESTEPS = 1000


def linear_gammas(steps: int = TIMESTEPS, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """Cumulative products of 1 - beta for a linear beta schedule (float64)."""
    betas = torch.linspace(start, end, steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


def level_embedding(gammas: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the noise level (Palette embeds gamma, not the step index)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=gammas.device) / half)
    angles = 1000.0 * gammas[:, None].float() * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(emb)[..., None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class SelfAttention(nn.Module):
    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.norm(x).flatten(2).transpose(1, 2)
        return x + self.attn(t, t, t, need_weights=False)[0].transpose(1, 2).view(b, c, h, w)


class UNetEncoder(nn.Module):
    """The down path and the middle: what the i2i method updates, and whose per-level outputs
    are its features (the Palette fork's `return_feat`: every input block and the middle)."""

    def __init__(self, width: int, mults: tuple[int, ...], emb_dim: int) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(),
                                   nn.Linear(emb_dim, emb_dim))
        self.stem = nn.Conv2d(2, width, 3, padding=1)
        self.levels = nn.ModuleList()
        self.downs = nn.ModuleList()
        cin = width
        for i, m in enumerate(mults):
            self.levels.append(ResBlock(cin, width * m, emb_dim))
            cin = width * m
            last = i == len(mults) - 1
            self.downs.append(nn.Identity() if last else nn.Conv2d(cin, cin, 3, 2, 1))
        self.mid1 = ResBlock(cin, cin, emb_dim)
        self.mid_attn = SelfAttention(cin)
        self.mid2 = ResBlock(cin, cin, emb_dim)
        self.width = width

    def forward(self, x: torch.Tensor,
                gammas: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        emb = self.embed(level_embedding(gammas, self.width))
        h = self.stem(x)
        skips = []
        for level, down in zip(self.levels, self.downs, strict=True):
            h = level(h, emb)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        return skips + [h], emb


class UNetDecoder(nn.Module):
    def __init__(self, width: int, mults: tuple[int, ...], emb_dim: int) -> None:
        super().__init__()
        self.levels = nn.ModuleList()
        self.ups = nn.ModuleList()
        cin = width * mults[-1]
        for i, m in reversed(list(enumerate(mults))):
            self.levels.append(ResBlock(cin + width * m, width * m, emb_dim))
            cin = width * m
            self.ups.append(nn.Upsample(scale_factor=2, mode="nearest") if i > 0 else nn.Identity())
        self.out = nn.Sequential(nn.GroupNorm(8, cin), nn.SiLU(), nn.Conv2d(cin, 1, 3, padding=1))

    def forward(self, feats: list[torch.Tensor], emb: torch.Tensor) -> torch.Tensor:
        *skips, h = feats
        for level, up, skip in zip(self.levels, self.ups, reversed(skips), strict=True):
            h = up(level(torch.cat([h, skip], dim=1), emb))
        return self.out(h)


class PaletteDDPM(InpaintingModel):
    family = "palette"
    noises = ("gaussian",)  # the fork's forget target is the diffusion noise itself

    def __init__(self, width: int = 16, mults: tuple[int, ...] = (1, 2, 2),
                 sample_steps: int = 20) -> None:
        super().__init__()
        emb_dim = 4 * width
        self.unet_encoder = UNetEncoder(width, tuple(mults), emb_dim)
        self.unet_decoder = UNetDecoder(width, tuple(mults), emb_dim)
        self.sample_steps = sample_steps
        self.register_buffer("gammas", linear_gammas().float(), persistent=False)

    @property
    def encoder(self) -> nn.Module:
        return self.unet_encoder

    def draw(self, x: torch.Tensor, g: torch.Generator) -> Draw:
        """Palette's `forward`: a step t, then gamma uniform between gamma_{t-1} and gamma_t."""
        b = len(x)
        t = torch.randint(1, TIMESTEPS, (b,), generator=g)
        low, high = self.gammas.cpu()[t - 1], self.gammas.cpu()[t]
        gammas = high + (low - high) * torch.rand(b, generator=g)
        return Draw(mask=training_masks(b, g).to(x.device), gammas=gammas.to(x.device),
                    noise=torch.randn(x.shape, generator=g).to(x.device),
                    cond_noise=torch.randn(x.shape, generator=g).to(x.device))

    def _net_input(self, y0: torch.Tensor, y_t: torch.Tensor, draw: Draw) -> torch.Tensor:
        cond = y0 * (1 - draw.mask) + draw.mask * draw.cond_noise
        return torch.cat([cond, y_t * draw.mask + (1 - draw.mask) * y0], dim=1)

    def _noisy(self, y0: torch.Tensor, draw: Draw) -> torch.Tensor:
        gam = draw.gammas.view(-1, 1, 1, 1)
        return gam.sqrt() * y0 + (1 - gam).sqrt() * draw.noise

    def _eps(self, net_input: torch.Tensor, gammas: torch.Tensor) -> torch.Tensor:
        feats, emb = self.unet_encoder(net_input, gammas)
        return self.unet_decoder(feats, emb)

    def _masked_mse(self, eps_hat: torch.Tensor, draw: Draw) -> torch.Tensor:
        return (draw.mask * (eps_hat - draw.noise)).pow(2).flatten(1).mean(1)

    def loss(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        y0 = 2 * x - 1
        return self._masked_mse(self._eps(self._net_input(y0, self._noisy(y0, draw), draw),
                                          draw.gammas), draw)

    def noisy_label_loss(self, x: torch.Tensor, draw: Draw, g: torch.Generator,
                         stats: torch.Tensor | None = None) -> torch.Tensor:
        """The fork's `learn_noise` on forget images: the noisy input carries no signal (pure
        noise in the hole), the target is still that noise."""
        y0 = 2 * x - 1
        return self._masked_mse(self._eps(self._net_input(y0, draw.noise, draw), draw.gammas), draw)

    def outputs(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        y0 = 2 * x - 1
        return self._eps(self._net_input(y0, self._noisy(y0, draw), draw), draw.gammas)

    def encode(self, x: torch.Tensor, draw: Draw) -> list[torch.Tensor]:
        y0 = 2 * x - 1
        return self.unet_encoder(self._net_input(y0, self._noisy(y0, draw), draw), draw.gammas)[0]

    def noise_target(self, x: torch.Tensor, draw: Draw, noise: str, g: torch.Generator,
                     stats: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The fork's forget target: the same condition, but the noisy image is pure noise in
        the hole (its `q_sample` with label -1); there is no noise-image option."""
        check_noise(self, noise)
        y0 = 2 * x - 1
        return self.unet_encoder(self._net_input(y0, draw.noise, draw), draw.gammas)[0]

    def generate(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Generator,
                 steps: int | None) -> torch.Tensor:
        steps = steps or self.sample_steps
        y0 = 2 * x - 1
        index = torch.linspace(TIMESTEPS - 1, 0, steps).round().long()
        draw = Draw(mask=mask, cond_noise=torch.randn(x.shape, generator=g).to(x.device))
        y_t = torch.randn(x.shape, generator=g).to(x.device)
        for i, t in enumerate(index):
            gam = self.gammas[t]
            gammas = gam.expand(len(x)).to(x.device)
            eps = self._eps(self._net_input(y0, y_t, draw), gammas)
            y0_hat = ((y_t - (1 - gam).sqrt() * eps) / gam.sqrt()).clamp(-1, 1)
            gam_prev = self.gammas[index[i + 1]] if i + 1 < steps else torch.tensor(1.0)
            y_t = gam_prev.sqrt() * y0_hat + (1 - gam_prev).sqrt() * eps
        return (y_t + 1) / 2

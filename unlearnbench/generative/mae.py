"""A small masked autoencoder (He et al., 2022) on 4x4-pixel patches of 32x32 images."""

from __future__ import annotations

import torch
from torch import nn

from .base import Draw, InpaintingModel, noise_images
from .data import CELL, SIDE, cell_mask
from .transformer import MaskedDecoder, MaskedEncoder, init_linear, visible_features

GRID = SIDE // CELL


def patchify(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, 32, 32) -> (B, 64, 16), row-major patches."""
    b = len(x)
    return x.view(b, GRID, CELL, GRID, CELL).permute(0, 1, 3, 2, 4).reshape(b, GRID * GRID, -1)


def unpatchify(p: torch.Tensor) -> torch.Tensor:
    b = len(p)
    return p.view(b, GRID, GRID, CELL, CELL).permute(0, 1, 3, 2, 4).reshape(b, 1, SIDE, SIDE)


class MAEEncoder(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.patch_embed = nn.Linear(CELL * CELL, dim)
        self.body = MaskedEncoder(GRID, dim, depth, heads)

    def forward(self, x: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        return self.body(self.patch_embed(patchify(x)), masked)


class MAE(InpaintingModel):
    """Pixels of the masked patches regressed with a per-image mean squared error."""

    family = "mage"  # the MAE unlearning code is unreleased: the ViT recipe of the MAGE fork

    def __init__(self, dim: int = 96, depth: int = 3, heads: int = 4, decoder_dim: int = 64,
                 decoder_depth: int = 2) -> None:
        super().__init__()
        self.mae_encoder = MAEEncoder(dim, depth, heads)
        self.decoder = MaskedDecoder(GRID, dim, decoder_dim, decoder_depth, heads)
        self.head = nn.Linear(decoder_dim, CELL * CELL)
        self.apply(init_linear)

    @property
    def encoder(self) -> nn.Module:
        return self.mae_encoder

    def _predict(self, x: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.mae_encoder(x, masked), masked))

    def _masked_mse(self, pred: torch.Tensor, target: torch.Tensor,
                    masked: torch.Tensor) -> torch.Tensor:
        per_patch = (pred - patchify(target)).pow(2).mean(dim=2)
        return (per_patch * masked).sum(1) / masked.sum(1).clamp_min(1)

    def loss(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        masked = cell_mask(draw.mask)
        return self._masked_mse(self._predict(x * (1 - draw.mask), masked), x, masked)

    def noisy_label_loss(self, x: torch.Tensor, draw: Draw, g: torch.Generator,
                         stats: torch.Tensor | None = None) -> torch.Tensor:
        """No reference (the MAE code is unreleased): the targets are the i2i method's
        Gaussian noise images, the pixel analogue of MAGE's random tokens."""
        masked = cell_mask(draw.mask)
        target = noise_images(x, "gaussian", g, stats)
        return self._masked_mse(self._predict(x * (1 - draw.mask), masked), target, masked)

    def outputs(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        return self._predict(x * (1 - draw.mask), cell_mask(draw.mask))

    def encode(self, x: torch.Tensor, draw: Draw) -> list[torch.Tensor]:
        masked = cell_mask(draw.mask)
        return [visible_features(self.mae_encoder(x * (1 - draw.mask), masked), masked)]

    def generate(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Generator,
                 steps: int | None) -> torch.Tensor:
        return unpatchify(self._predict(x, cell_mask(mask)))

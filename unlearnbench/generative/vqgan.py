"""A MAGE-like token model: a VQ autoencoder turns 32x32 images into 8x8 tokens, a masked
token transformer predicts the tokens under the mask, MaskGIT-style iterative decoding fills
them in. The tokenizer is trained first and then frozen (as MAGE freezes its VQGAN).

The tokenizer is a VQ-VAE (reconstruction + commitment loss, EMA codebook with dead-code
restarts) whose encoder works per patch; the GAN and perceptual losses of a VQGAN are left
out at this size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Draw, InpaintingModel
from .data import CELL, SIDE, cell_mask
from .transformer import MaskedDecoder, MaskedEncoder, init_linear, visible_features

GRID = SIDE // CELL
LABEL_SMOOTHING = 0.1  # MAGE's LabelSmoothingCrossEntropy
CHOICE_TEMPERATURE = 4.5  # MAGE's inpainting script (`testpaint.py`)


class Quantizer(nn.Module):
    """Nearest-codeword quantisation; the codebook follows EMA cluster means (VQ-VAE-2) and
    codewords used less than ``min_usage`` times per step (EMA) restart at random encoder
    outputs of the current batch (also how the codebook starts)."""

    def __init__(self, codes: int, dim: int, decay: float = 0.99, min_usage: float = 0.1) -> None:
        super().__init__()
        self.decay, self.min_usage = decay, min_usage
        self.register_buffer("codebook", torch.zeros(codes, dim))
        self.register_buffer("ema_count", torch.zeros(codes))
        self.register_buffer("ema_sum", torch.zeros(codes, dim))

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) -> (B, h*w) nearest codeword ids."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T \
            + self.codebook.pow(2).sum(1)
        return dist.argmin(1).view(len(z), -1)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, D, grid, grid) codewords."""
        b, n = ids.shape
        side = math.isqrt(n)
        return self.codebook[ids].view(b, side, side, -1).permute(0, 3, 1, 2)

    @torch.no_grad()
    def update(self, z: torch.Tensor, ids: torch.Tensor, g: torch.Generator) -> None:
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        onehot = F.one_hot(ids.flatten(), len(self.codebook)).type_as(flat)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.T @ flat, alpha=1 - self.decay)
        used = self.ema_count >= self.min_usage * (1 - self.decay)
        self.codebook[used] = self.ema_sum[used] / self.ema_count[used, None]
        dead = ~used
        if dead.any():
            pick = torch.randint(0, len(flat), (int(dead.sum()),), generator=g).to(flat.device)
            self.codebook[dead] = flat[pick]
            self.ema_count[dead] = 1 - self.decay
            self.ema_sum[dead] = flat[pick] * (1 - self.decay)


class Tokenizer(nn.Module):
    def __init__(self, codes: int, code_dim: int, width: int) -> None:
        super().__init__()
        # Each token sees only its own 4x4 patch: the tokens of a masked image equal the
        # full image's at every visible cell, so nothing leaks from the hole.
        self.enc = nn.Sequential(
            nn.Conv2d(1, 2 * width, CELL, stride=CELL), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 1), nn.ReLU(),
            nn.Conv2d(2 * width, code_dim, 1))
        self.dec = nn.Sequential(
            nn.Conv2d(code_dim, 2 * width, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, 2 * width, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 1, 3, padding=1))
        self.quantizer = Quantizer(codes, code_dim)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer.indices(self.enc(x))

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        return self.dec(self.quantizer.lookup(ids))

    def loss(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        z = self.enc(x)
        ids = self.quantizer.indices(z)
        q = self.quantizer.lookup(ids)
        recon = self.dec(z + (q - z).detach())  # straight-through estimator
        if self.training:
            self.quantizer.update(z, ids, g)
        return F.mse_loss(recon, x) + 0.25 * F.mse_loss(z, q.detach())


class TokenTransformer(nn.Module):
    """The encoder the i2i method updates: token embeddings and the masked encoder."""

    def __init__(self, codes: int, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.token_emb = nn.Embedding(codes, dim)
        nn.init.normal_(self.token_emb.weight, std=0.02)
        self.body = MaskedEncoder(GRID, dim, depth, heads)

    def forward(self, ids: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        return self.body(self.token_emb(ids), masked)


class VQTokenModel(InpaintingModel):
    stages = ("tokenizer", "transformer")
    family = "mage"

    def __init__(self, codes: int = 256, code_dim: int = 16, width: int = 32, dim: int = 96,
                 depth: int = 3, heads: int = 4, decoder_dim: int = 64, decoder_depth: int = 2,
                 decode_steps: int = 8) -> None:
        super().__init__()
        self.codes, self.decode_steps = codes, decode_steps
        self.tokenizer = Tokenizer(codes, code_dim, width)
        self.token_encoder = TokenTransformer(codes, dim, depth, heads)
        self.decoder = MaskedDecoder(GRID, dim, decoder_dim, decoder_depth, heads)
        self.head = nn.Linear(decoder_dim, codes)
        for part in (self.token_encoder, self.decoder, self.head):
            part.apply(init_linear)

    @property
    def encoder(self) -> nn.Module:
        return self.token_encoder

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        if stage == "tokenizer":
            return list(self.tokenizer.parameters())
        return [p for name, p in self.named_parameters() if not name.startswith("tokenizer.")]

    def training_loss(self, x: torch.Tensor, g: torch.Generator, stage: str) -> torch.Tensor:
        if stage == "tokenizer":
            return self.tokenizer.loss(x, g)
        self.tokenizer.eval()  # frozen: no codebook updates, no gradients
        return super().training_loss(x, g, stage)

    def _ids(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.tokenizer.tokens(x)

    def _logits(self, ids: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.token_encoder(ids, masked), masked))

    def _masked_ce(self, logits: torch.Tensor, targets: torch.Tensor,
                   masked: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none",
                             label_smoothing=LABEL_SMOOTHING)
        return (ce * masked).sum(1) / masked.sum(1).clamp_min(1)

    def loss(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        ids, masked = self._ids(x), cell_mask(draw.mask)
        return self._masked_ce(self._logits(ids, masked), ids, masked)

    def noisy_label_loss(self, x: torch.Tensor, draw: Draw, g: torch.Generator,
                         stats: torch.Tensor | None = None) -> torch.Tensor:
        """MAGE's `forward_weighted_loss_noise_label`: targets drawn from a Gaussian with the
        batch's token-id mean and std, rounded and clamped to the codebook."""
        ids, masked = self._ids(x), cell_mask(draw.mask)
        ref = ids if stats is None else self._ids(stats)
        ref = ref.float()
        z = torch.randn(ids.shape, generator=g).to(x.device)
        noisy = (z * ref.std() + ref.mean()).round().clamp(0, self.codes - 1)
        return self._masked_ce(self._logits(ids, masked), noisy.long(), masked)

    def outputs(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        return self._logits(self._ids(x), cell_mask(draw.mask))

    def encode(self, x: torch.Tensor, draw: Draw) -> list[torch.Tensor]:
        masked = cell_mask(draw.mask)
        return [visible_features(self.token_encoder(self._ids(x), masked), masked)]

    def generate(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Generator,
                 steps: int | None) -> torch.Tensor:
        """MaskGIT decoding as in MAGE's `testpaint.py`: each step samples every unknown
        token, keeps the most confident ones (Gumbel-perturbed, temperature annealed) and
        re-masks the rest on a cosine schedule; ``steps=1`` fills all tokens at once."""
        steps = steps or self.decode_steps
        unknown = cell_mask(mask)
        ids = self.tokenizer.tokens(x)
        start = unknown.sum(1, keepdim=True)
        for step in range(steps):
            probs = self._logits(ids, unknown).softmax(-1)
            sampled = torch.multinomial(probs.view(-1, self.codes).cpu(), 1, generator=g)
            sampled = sampled.view(ids.shape).to(x.device)
            sampled = torch.where(unknown, sampled, ids)
            ratio = (step + 1) / steps
            remain = (start * math.cos(math.pi / 2 * ratio)).floor()
            remain = torch.minimum(remain, unknown.sum(1, keepdim=True) - 1).clamp_min(0)
            confidence = probs.gather(-1, sampled[..., None]).squeeze(-1).log()
            gumbel = -torch.log(-torch.log(torch.rand(ids.shape, generator=g).clamp(1e-20, 1)))
            confidence = confidence + CHOICE_TEMPERATURE * (1 - ratio) * gumbel.to(x.device)
            confidence = confidence.masked_fill(~unknown, math.inf)
            rank = confidence.argsort(1).argsort(1)  # 0 = least confident
            unknown = rank < remain
            ids = sampled
        return self.tokenizer.decode(ids)

"""The masked encoder-decoder transformer shared by the MAE and the VQ token model.

MAE semantics with fixed shapes: every position runs through the encoder, but attention keys
are the visible positions (and a class token) only, so the visible tokens' features are exactly
what an encoder that drops the masked tokens would compute. The decoder gets those features at
visible positions and a learned mask token elsewhere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sincos_positions(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding, (grid*grid, dim), as in MAE."""
    if dim % 4:
        raise ValueError(f"the embedding width must be a multiple of 4, got {dim}")
    quarter = dim // 4
    freqs = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    parts = []
    for coord in (ys.flatten(), xs.flatten()):
        angles = coord[:, None].double() * freqs[None]
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1).float()


class Block(nn.Module):
    """Pre-norm transformer block; ``attend`` (B, L) says which keys each query may see."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        bias = None
        if attend is not None:
            bias = torch.zeros(b, 1, 1, n, dtype=x.dtype, device=x.device)
            bias = bias.masked_fill(~attend[:, None, None, :], -math.inf)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.proj(y.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class MaskedEncoder(nn.Module):
    """Token embeddings in, per-position features out; masked positions are never keys."""

    def __init__(self, grid: int, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.mask_query = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos", sincos_positions(grid, dim)[None], persistent=False)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.mask_query, std=0.02)

    def forward(self, tokens: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """tokens (B, L, D) embeddings, masked (B, L) -> (B, 1 + L, D); position 0 is the class
        token. Masked inputs are replaced by a learned query before anything reads them."""
        x = torch.where(masked[..., None], self.mask_query, tokens) + self.pos
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1)
        attend = torch.cat([masked.new_ones(len(x), 1), ~masked], dim=1)
        for blk in self.blocks:
            x = blk(x, attend)
        return self.norm(x)


class MaskedDecoder(nn.Module):
    """Encoder features at visible positions, a mask token elsewhere, full attention. Positions
    are a fixed sine-cosine embedding plus a learned one, as in MAGE's decoder, so masked
    positions differ from the first step on."""

    def __init__(self, grid: int, enc_dim: int, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        fixed = torch.cat([torch.zeros(1, dim), sincos_positions(grid, dim)])[None]
        self.register_buffer("fixed_pos", fixed, persistent=False)
        self.pos = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, features: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        x = self.embed(features)
        hidden = torch.cat([masked.new_zeros(len(x), 1), masked], dim=1)
        x = torch.where(hidden[..., None], self.mask_token, x) + self.fixed_pos + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 1:]


def visible_features(features: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Zero the encoder outputs at masked positions (they are never read by the decoder), keep
    the class token: what the i2i method's L2 compares."""
    keep = torch.cat([masked.new_ones(len(masked), 1), ~masked], dim=1)
    return features * keep[..., None]


def init_linear(module: nn.Module) -> None:
    """Xavier-uniform linear layers with zero bias, as MAE/MAGE initialise theirs."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)

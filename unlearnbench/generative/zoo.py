"""The generators a `model=` option names (task=inpainting): typed keyword-only builders, so
the validation layer checks their widths like every other component's parameters."""

from __future__ import annotations

from typing import Annotated

from ..params import NonEmpty, PositiveInt, Range
from .base import InpaintingModel
from .ddpm import PaletteDDPM
from .mae import MAE
from .vqgan import VQTokenModel

Heads = Annotated[int, Range(1, 64)]
Steps = Annotated[int, Range(1, 1000)]


def mae(*, dim: PositiveInt = 96, depth: PositiveInt = 3, heads: Heads = 4,
        decoder_dim: PositiveInt = 64, decoder_depth: PositiveInt = 2) -> InpaintingModel:
    return MAE(dim, depth, heads, decoder_dim, decoder_depth)


def vqgan(*, codes: Annotated[int, Range(2, 65536)] = 256, code_dim: PositiveInt = 16,
          width: PositiveInt = 32, dim: PositiveInt = 96, depth: PositiveInt = 3,
          heads: Heads = 4, decoder_dim: PositiveInt = 64, decoder_depth: PositiveInt = 2,
          decode_steps: Steps = 8) -> InpaintingModel:
    return VQTokenModel(codes, code_dim, width, dim, depth, heads, decoder_dim, decoder_depth,
                        decode_steps)


def ddpm(*, width: PositiveInt = 16,
         mults: Annotated[list[PositiveInt], NonEmpty()] = (1, 2, 2),  # type: ignore[assignment]
         sample_steps: Steps = 20) -> InpaintingModel:
    return PaletteDDPM(width, tuple(mults), sample_steps)

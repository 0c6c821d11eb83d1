"""Images and masks of the inpainting task: 32x32 greyscale images in [0, 1].

A mask is 1 where the model must generate pixels and 0 where it sees the ground truth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

SIDE = 32
CELL = 4  # patch side of the MAE and token side of the VQ model: masks are drawn on this grid
MODES = ("inpaint", "outpaint")


def to_square(images: torch.Tensor, side: int = SIDE) -> torch.Tensor:
    """(N, 1, H, W) images in [0, 1] to (N, 1, side, side).

    Small images whose side divides ``side`` at least twice over (digits, 8x8) are upsampled
    bilinearly; the others (Fashion-MNIST, MNIST: 28x28) are zero-padded around the centre, as
    their background is black.
    """
    if images.dim() != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(f"expected (N, C, H, H) images, got {tuple(images.shape)}")
    h = images.shape[2]
    if h > side:
        raise ValueError(f"images of side {h} are larger than {side}")
    if h * 2 <= side and side % h == 0:
        out = F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False)
        return out.clamp(0.0, 1.0)
    before = (side - h) // 2
    after = side - h - before
    return F.pad(images, (before, after, before, after))


def unit_range(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Undo an affine normalisation: map the training set's min..max to 0..1 (the same map for
    the other tensors). Exact for datasets whose pixels span black to white (Fashion-MNIST,
    digits, MNIST), so the classifier task's normalised tensors can be reused."""
    low, high = train.amin(), train.amax()
    scale = (high - low).clamp_min(1e-12)
    return tuple(((t - low) / scale).clamp(0.0, 1.0) for t in (train, *others))


def region_mask(box: float, mode: str, side: int = SIDE) -> torch.Tensor:
    """The evaluation mask, (1, 1, side, side): a centred square of ``box`` times the side.

    ``inpaint`` generates the square, ``outpaint`` keeps the square and generates the rest.
    """
    if mode not in MODES:
        raise ConfigError("task.mode", mode, ", ".join(MODES))
    if not 0.0 < float(box) < 1.0:
        raise ConfigError("task.box", box, "a fraction of the side in (0, 1), e.g. 0.5 or 0.25")
    width = max(1, round(float(box) * side))
    start = (side - width) // 2
    mask = torch.zeros(1, 1, side, side)
    mask[..., start : start + width, start : start + width] = 1.0
    return mask if mode == "inpaint" else 1.0 - mask


def masked_input(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """What a model is given: the ground truth outside the mask, black inside."""
    return images * (1.0 - mask)


def _rectangles(n: int, cells: int, g: torch.Generator, low: int, high: int) -> torch.Tensor:
    """(n, cells, cells) boolean rectangles with sides drawn in [low, high] cells."""
    h = torch.randint(low, high + 1, (n, 1, 1), generator=g)
    w = torch.randint(low, high + 1, (n, 1, 1), generator=g)
    top = (torch.rand(n, 1, 1, generator=g) * (cells - h + 1)).floor()
    left = (torch.rand(n, 1, 1, generator=g) * (cells - w + 1)).floor()
    rows = torch.arange(cells).view(1, cells, 1)
    cols = torch.arange(cells).view(1, 1, cells)
    return (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)


def training_masks(n: int, g: torch.Generator, side: int = SIDE, cell: int = CELL) -> torch.Tensor:
    """Random training masks on the cell grid, (n, 1, side, side) floats on the CPU.

    An equal mixture of a random rectangle (inpainting), the complement of one (outpainting)
    and random cells at a ratio in [0.5, 0.9] (MAE/MAGE-style random masking), so one model
    serves both evaluation modes. At least one cell always stays visible.
    """
    cells = side // cell
    kind = torch.randint(0, 3, (n, 1, 1), generator=g)
    box = _rectangles(n, cells, g, 2, cells - 2)
    keep = _rectangles(n, cells, g, 2, cells // 2 + 1)
    ratio = 0.5 + 0.4 * torch.rand(n, 1, 1, generator=g)
    scattered = torch.rand(n, cells, cells, generator=g) < ratio
    grid = torch.where(kind == 0, box, torch.where(kind == 1, ~keep, scattered))
    grid[:, 0, 0] &= grid.flatten(1).all(dim=1).logical_not()  # never mask every cell
    return grid.float().repeat_interleave(cell, 1).repeat_interleave(cell, 2).unsqueeze(1)


def cell_mask(mask: torch.Tensor, cell: int = CELL) -> torch.Tensor:
    """(N, 1, side, side) pixel mask to (N, L) booleans per cell, row-major: a cell is masked
    when any of its pixels is."""
    pooled = F.max_pool2d(mask, cell)
    return pooled.flatten(1) > 0.5

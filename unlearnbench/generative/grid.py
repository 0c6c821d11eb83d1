"""PNG grids of inpaintings, like the paper's figures: one column per image kind (ground truth,
input, original, unlearned, retrain), one row per example, retain rows above forget rows."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .data import masked_input  # noqa: E402

INPUT_SHADE = 0.5  # the hole is drawn grey in the input column so it shows on black images


def _figure(columns: dict[str, torch.Tensor], row_labels: list[str],
            scale: float) -> plt.Figure:
    n_rows = len(row_labels)
    if any(len(images) != n_rows for images in columns.values()):
        raise ValueError("every column needs one image per row label")
    fig, axes = plt.subplots(n_rows, len(columns), squeeze=False,
                             figsize=(scale * len(columns), scale * n_rows))
    for c, (title, images) in enumerate(columns.items()):
        for r in range(n_rows):
            ax = axes[r][c]
            ax.imshow(images[r, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(row_labels[r], fontsize=8)
    fig.tight_layout()
    return fig


def save_grid(path: str | Path, columns: dict[str, torch.Tensor], row_labels: list[str],
              scale: float = 1.2) -> Path:
    """Write a grid of (R, 1, H, W) images in [0, 1], one tensor per column."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(grid_png(columns, row_labels, scale))
    return path


def grid_png(columns: dict[str, torch.Tensor], row_labels: list[str],
             scale: float = 1.2) -> bytes:
    """The grid as PNG bytes (a job's file, written by the runner with its others)."""
    fig = _figure(columns, row_labels, scale)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def unlearning_columns(mask: torch.Tensor, retain_truth: torch.Tensor,
                       forget_truth: torch.Tensor,
                       generated: dict[str, tuple[torch.Tensor, torch.Tensor]]
                       ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The paper's figure: ``generated`` maps a role (original, unlearned, retrain) to its
    inpaintings of the same retain and forget examples; returns the columns and row labels."""
    truth = torch.cat([retain_truth, forget_truth])
    shown_input = masked_input(truth, mask) + INPUT_SHADE * mask
    columns = {"ground truth": truth, "input": shown_input}
    for role, (retain, forget) in generated.items():
        columns[role] = torch.cat([retain, forget])
    labels = ["retain"] * len(retain_truth) + ["forget"] * len(forget_truth)
    return columns, labels


def unlearning_grid(path: str | Path, mask: torch.Tensor, retain_truth: torch.Tensor,
                    forget_truth: torch.Tensor,
                    generated: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Path:
    """Write the paper's figure (see :func:`unlearning_columns`)."""
    return save_grid(path, *unlearning_columns(mask, retain_truth, forget_truth, generated))

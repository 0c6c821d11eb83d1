"""Data poisoning for the backdoor (Trojan) scenario: a BadNets trigger, a solid square patch,
stamped on chosen training images that are relabelled to the attacker's target class.

The reference, OPTML-Group/Unlearn-Sparse (``main_backdoor.py``, ``utils.get_poisoned_loader``,
``dataset.replace_class`` with ``class_to_replace=-1``):

- the poisoned samples: ``num_indexes_to_replace`` (4,500 of CIFAR-10's 45,000 training images,
  10 %) drawn uniformly from the whole training set, target-class images included;
- the trigger: the raw pixels ``[-2-size:-2, -2-size:-2]`` set to 0, a black ``trigger_size``
  (4) square two pixels from the bottom-right corner, before normalisation;
- the labels of the poisoned samples: the target class (``--class_to_replace``, default 0);
- forget set = the poisoned samples (trigger and target label), retain set = the rest (clean);
- attack accuracy: accuracy on the whole stamped test set with every label set to the target.

A :class:`Poisoning` is a scenario's *data transform*: the task applies it to the loaded
tensors before anything trains, the validation layer checks it against the image size, and
its :meth:`Poisoning.key` joins the cache key of every model trained on that data, so a
poisoned model never shares a key with a clean one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from .data import Data
from .errors import ConfigError

Corner = Literal["bottom_right", "bottom_left", "top_right", "top_left"]


@dataclass(frozen=True)
class Trigger:
    """A ``size`` x ``size`` square of raw intensity ``value`` (in [0, 1], before
    normalisation), ``margin`` pixels from the ``position`` corner."""

    size: int
    position: Corner
    margin: int
    value: float

    def fits(self, height: int, width: int) -> bool:
        return self.size + self.margin <= min(height, width)

    def region(self, height: int, width: int) -> tuple[slice, slice]:
        """The rows and columns the patch covers (clipped to the image)."""

        def span(extent: int, far: bool) -> slice:
            start = extent - self.margin - self.size if far else self.margin
            return slice(max(0, start), max(0, start + self.size))

        return (span(height, self.position.startswith("bottom")),
                span(width, self.position.endswith("right")))

    def stamp(self, images: torch.Tensor, data: Data) -> torch.Tensor:
        """A copy of normalised ``images`` (N, C, H, W) with the patch, ``value`` mapped
        through the dataset's per-channel normalisation."""
        rows, cols = self.region(*images.shape[2:])
        out = images.clone()
        out[:, :, rows, cols] = data.normalised(self.value).to(images.device, images.dtype)
        return out

    def describe(self) -> dict[str, Any]:
        return {"size": self.size, "position": self.position, "margin": self.margin,
                "value": self.value}


@dataclass(frozen=True)
class Poisoning:
    """Stamp ``trigger`` on training rows ``indices`` and relabel them ``target_class``."""

    trigger: Trigger
    target_class: int
    indices: torch.Tensor

    def apply(self, data: Data) -> Data:
        """The poisoned copy of ``data`` (its test set stays clean)."""
        rows = self.indices.to(data.train_x.device)
        train_x, train_y = data.train_x.clone(), data.train_y.clone()
        train_x[rows] = self.trigger.stamp(data.train_x[rows], data)
        train_y[rows] = self.target_class
        return replace(data, train_x=train_x, train_y=train_y)

    def check(self, data: Data) -> None:
        """The trigger fits the images (known only once the data is loaded)."""
        _, height, width = data.input_shape
        if not self.trigger.fits(height, width):
            raise ConfigError(
                "scenario.size", self.trigger.size,
                f"an integer with size + margin <= {min(height, width)} (the images of "
                f"dataset={data.name} are {height}x{width}; scenario.margin="
                f"{self.trigger.margin})")

    def reindexed(self, new_index: torch.Tensor) -> Poisoning:
        """The same poisoning after training rows were removed (none of them poisoned)."""
        return replace(self, indices=new_index[self.indices.cpu()])

    def key(self) -> dict[str, Any]:
        """Cache-key material: everything that makes the poisoned data differ from the
        clean data."""
        rows = self.indices.cpu().numpy().astype(np.int64).tobytes()
        return {"poisoning": {"trigger": self.trigger.describe(),
                              "target_class": self.target_class,
                              "indices_sha256": hashlib.sha256(rows).hexdigest()}}

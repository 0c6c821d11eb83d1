"""Forget scenarios: which training samples the forget set D_f holds."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import numpy as np
import torch

from .data import Data
from .errors import ConfigError
from .params import ClassId, NonEmpty, NonNegativeInt, PositiveInt, Range, UnitInterval
from .poison import Corner, Poisoning, Trigger
from .registry import resolve


class DataTransform(Protocol):
    """What a scenario may do to the training data besides choosing D_f (backdoor: poison
    it). The task applies it to the loaded data; ``check`` runs in the validation layer's
    data checks; ``key`` joins the cache key of every model trained on the changed data."""

    def apply(self, data: Data) -> Data: ...

    def check(self, data: Data) -> None: ...

    def key(self) -> dict[str, Any]: ...

    def reindexed(self, new_index: torch.Tensor) -> DataTransform:
        """The same transform after training rows were removed (``new_index``: old row -> new
        row); the removed rows are never ones it changes."""
        ...


@dataclass(frozen=True)
class Split:
    """Forget and retain indices into the training set (sorted, disjoint, covering it)."""

    forget: torch.Tensor
    retain: torch.Tensor
    forget_classes: tuple[int, ...] = ()  # non-empty for class-wise forgetting
    transform: DataTransform | None = None  # the scenario changes the training data itself

    @property
    def digest(self) -> str:
        """sha256 of the forget indices: part of the retrain's cache key."""
        return hashlib.sha256(self.forget.cpu().numpy().astype(np.int64).tobytes()).hexdigest()

    def without(self, rows: torch.Tensor) -> Split:
        """The split after retain ``rows`` left the training set (a validation hold-out): the
        indices renumbered into the remaining rows."""
        n = len(self.forget) + len(self.retain)
        keep = torch.ones(n, dtype=torch.bool)
        keep[rows.cpu()] = False
        if not keep[self.forget.cpu()].all():
            raise ValueError("a held-out row is in the forget set")
        new_index = torch.cumsum(keep, 0) - 1
        retain = self.retain.cpu()
        return Split(forget=new_index[self.forget.cpu()], retain=new_index[retain[keep[retain]]],
                     forget_classes=self.forget_classes,
                     transform=None if self.transform is None
                     else self.transform.reindexed(new_index))


@dataclass(frozen=True)
class Forget:
    """What a scenario function returns: forget indices, and the classes for class-wise."""

    indices: torch.Tensor
    classes: tuple[int, ...] = ()
    transform: DataTransform | None = None


def draw_generator(seed: int, salt: int) -> torch.Generator:
    """A generator for one kind of draw. Salted, because training orders its data with
    ``Generator().manual_seed(seed)``: a forget set drawn from that same stream would be the
    first batches of the first epoch (one pure-D_f block instead of D_f spread over batches)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + salt)


def shard_partition(n: int, shards: int, seed: int) -> list[torch.Tensor]:
    """SISA's shards: a uniformly random partition of ``range(n)`` into ``shards`` near-equal
    parts, each in its random order (SISA cuts that order into slices)."""
    g = draw_generator(seed, 0x5157A)
    return list(torch.randperm(n, generator=g).tensor_split(shards))


def _check_classes(classes: list[int], num_classes: int) -> tuple[int, ...]:
    if any(c >= num_classes for c in classes):
        raise ConfigError("scenario.forget_classes", "[" + ",".join(map(str, classes)) + "]",
                          f"a non-empty list of class ids in [0, {num_classes - 1}]")
    if len(set(classes)) == num_classes:
        raise ConfigError("scenario.forget_classes", "[" + ",".join(map(str, classes)) + "]",
                          "at most num_classes - 1 classes (the retain set would be empty)")
    return tuple(sorted(set(classes)))


def classwise(train_y: torch.Tensor, num_classes: int, seed: int, *,
              forget_classes: Annotated[list[ClassId], NonEmpty()]) -> Forget:
    """Every training sample of ``forget_classes``."""
    classes = _check_classes(list(forget_classes), num_classes)
    idx = torch.arange(len(train_y))[torch.isin(train_y.cpu(), torch.tensor(classes))]
    return Forget(idx, classes)


def random(train_y: torch.Tensor, num_classes: int, seed: int, *,
           fraction: Annotated[float, Range(0, 1, low_open=True, high_open=True,
                                            hint="a number with 0 < fraction < 1")]) -> Forget:
    """A uniformly drawn ``fraction`` of the training set."""
    n = len(train_y)
    count = max(1, round(float(fraction) * n))
    if count >= n:
        raise ConfigError("scenario.fraction", fraction, "a number with 0 < fraction < 1 "
                          f"that leaves at least one of the n_train={n} samples to retain")
    g = draw_generator(seed, 0xF0C6E7)
    return Forget(torch.randperm(n, generator=g)[:count].sort().values)


def samples(train_y: torch.Tensor, num_classes: int, seed: int, *,
            count: Annotated[int, Range(1, 10**9, hint="an integer with 1 <= count < n_train")],
            in_shards: NonNegativeInt = 0, shards: PositiveInt = 5) -> Forget:
    """K training samples, uniform over the training set or over ``in_shards`` SISA shards."""
    n = len(train_y)
    if in_shards > shards:
        raise ConfigError("scenario.in_shards", in_shards,
                          f"0 (uniform) or an integer in [1, scenario.shards={shards}]")
    if count >= n:
        raise ConfigError("scenario.count", count, f"an integer with 1 <= count < n_train={n}")
    pool = torch.arange(n)
    if in_shards:
        pool = torch.cat(shard_partition(n, shards, seed)[:in_shards]).sort().values
        if count > len(pool):
            raise ConfigError("scenario.count", count, f"at most {len(pool)}, the samples of "
                              f"{in_shards} of {shards} shards (scenario.in_shards)")
    g = draw_generator(seed, 0xF0C6E7)  # uniform: the head of the `random` draw
    return Forget(pool[torch.randperm(len(pool), generator=g)[:count]].sort().values)


def backdoor(train_y: torch.Tensor, num_classes: int, seed: int, *,
             poison_ratio: Annotated[float, Range(0, 1, low_open=True, high_open=True,
                                                  hint="a number with 0 < poison_ratio < 1")]
             = 0.1,
             target_class: ClassId = 0,
             size: Annotated[int, Range(1, 4096, hint="an integer >= 1 (pixels)")] = 4,
             position: Corner = "bottom_right",
             margin: Annotated[int, Range(0, 4096, hint="an integer >= 0 (pixels)")] = 2,
             value: UnitInterval = 1.0) -> Forget:
    """BadNets poisoning (Unlearn-Sparse ``main_backdoor.py``): a uniformly drawn
    ``poison_ratio`` of the training samples, any class, get the trigger and the label
    ``target_class``; D_f is exactly those samples."""
    if target_class >= num_classes:
        raise ConfigError("scenario.target_class", target_class,
                          f"a class id in [0, {num_classes - 1}]")
    n = len(train_y)
    count = max(1, round(float(poison_ratio) * n))
    g = draw_generator(seed, 0xBAD)
    poisoned = torch.randperm(n, generator=g)[:count].sort().values
    trigger = Trigger(size=size, position=position, margin=margin, value=float(value))
    return Forget(poisoned, transform=Poisoning(trigger, target_class, poisoned))


# Keys every scenario config has besides its function's parameters.
DESCRIPTOR_KEYS = ("_target_", "name")


def scenario_function(cfg: Mapping[str, Any], allow: tuple[str, ...] = ()) -> Callable[..., Forget]:
    return resolve(cfg.get("_target_"), "scenario", "scenario._target_", allow)


def make_split(cfg: Mapping[str, Any], train_y: torch.Tensor, num_classes: int,
               seed: int) -> Split:
    """Pick forget indices deterministically from ``seed``."""
    params = {k: v for k, v in cfg.items() if k not in DESCRIPTOR_KEYS}
    forget = scenario_function(cfg)(train_y, num_classes, seed, **params)
    n = len(train_y)
    mask = torch.ones(n, dtype=torch.bool)
    mask[forget.indices] = False
    retain = torch.arange(n)[mask]
    name = cfg.get("name", "scenario")
    if len(retain) == 0:
        raise ConfigError(f"scenario ({name})", "forgets every training sample",
                          "a forget set that leaves a non-empty retain set")
    if len(forget.indices) == 0:
        raise ConfigError(f"scenario ({name})", "selects no training sample",
                          "a forget set with at least one sample")
    return Split(forget=forget.indices, retain=retain, forget_classes=forget.classes,
                 transform=forget.transform)

"""Forget scenarios: which training samples the forget set D_f holds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import ConfigError

SCENARIOS = ("classwise", "random", "samples")


@dataclass(frozen=True)
class Split:
    """Forget and retain indices into the training set (sorted, disjoint, covering it)."""

    forget: torch.Tensor
    retain: torch.Tensor
    forget_classes: tuple[int, ...] = ()  # non-empty for class-wise forgetting

    @property
    def digest(self) -> str:
        """sha256 of the forget indices: part of the retrain's cache key."""
        return hashlib.sha256(self.forget.cpu().numpy().astype(np.int64).tobytes()).hexdigest()


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


def validate_samples(cfg: Any) -> None:
    """Data-free checks of the `samples` scenario (`count < n_train` needs the data)."""
    count, in_shards, shards = cfg.count, cfg.in_shards, cfg.shards
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError("scenario.count", count, "an integer with 1 <= count < n_train")
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise ConfigError("scenario.shards", shards, "an integer >= 1")
    if not isinstance(in_shards, int) or isinstance(in_shards, bool) \
            or not 0 <= in_shards <= shards:
        raise ConfigError("scenario.in_shards", in_shards,
                          f"0 (uniform) or an integer in [1, scenario.shards={shards}]")


def pick_samples(cfg: Any, n: int, seed: int) -> torch.Tensor:
    """K training samples, uniform over the training set or over ``in_shards`` SISA shards."""
    count, in_shards = int(cfg.count), int(cfg.in_shards)
    if count >= n:
        raise ConfigError("scenario.count", count, f"an integer with 1 <= count < n_train={n}")
    pool = torch.arange(n)
    if in_shards:
        pool = torch.cat(shard_partition(n, int(cfg.shards), seed)[:in_shards]).sort().values
        if count > len(pool):
            raise ConfigError("scenario.count", count, f"at most {len(pool)}, the samples of "
                              f"{in_shards} of {cfg.shards} shards (scenario.in_shards)")
    g = draw_generator(seed, 0xF0C6E7)  # uniform: the head of the `random` draw
    return pool[torch.randperm(len(pool), generator=g)[:count]].sort().values


def validate_scenario(cfg: Any, num_classes: int) -> None:
    """Check the scenario's keys; needs only the class count, not the data."""
    if cfg.name == "classwise":
        classes = list(cfg.forget_classes)
        if not classes or any(not 0 <= int(c) < num_classes for c in classes):
            raise ConfigError("scenario.forget_classes", classes,
                              f"a non-empty list of class ids in [0, {num_classes - 1}]")
        if len(set(classes)) == num_classes:
            raise ConfigError("scenario.forget_classes", classes,
                              "at most num_classes - 1 classes (the retain set would be empty)")
    elif cfg.name == "random":
        if not 0 < float(cfg.fraction) < 1:
            raise ConfigError("scenario.fraction", cfg.fraction, "a number with 0 < fraction < 1")
    elif cfg.name == "samples":
        validate_samples(cfg)
    else:
        raise ConfigError("scenario", cfg.name, ", ".join(SCENARIOS))


def make_split(cfg: Any, train_y: torch.Tensor, num_classes: int, seed: int) -> Split:
    """Pick forget indices deterministically from ``seed``."""
    validate_scenario(cfg, num_classes)
    n = len(train_y)
    all_idx = torch.arange(n)
    if cfg.name == "classwise":
        classes = tuple(sorted({int(c) for c in cfg.forget_classes}))
        forget = all_idx[torch.isin(train_y.cpu(), torch.tensor(classes))]
    elif cfg.name == "samples":
        forget, classes = pick_samples(cfg, n, seed), ()
    else:
        count = max(1, round(float(cfg.fraction) * n))
        g = draw_generator(seed, 0xF0C6E7)
        forget = torch.randperm(n, generator=g)[:count].sort().values
        classes = ()
    mask = torch.ones(n, dtype=torch.bool)
    mask[forget] = False
    retain = all_idx[mask]
    if len(retain) == 0:
        raise ConfigError(f"scenario ({cfg.name})", "forgets every training sample",
                          "a forget set that leaves a non-empty retain set")
    if len(forget) == 0:
        raise ConfigError(f"scenario ({cfg.name})", "selects no training sample",
                          "a forget set with at least one sample")
    return Split(forget=forget, retain=retain, forget_classes=classes)

"""Producers of task=inpainting: the generators' original and retrain, and the judge classifier
whose feature space the generative metrics use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import torch
from torch import nn

from ..context import TrainEnv
from ..generative.metrics import build_judge, train_judge
from ..generative.training import train_generator
from ..params import BatchSize, Epochs, LearningRate, NonEmpty, PositiveInt, Seed
from ..training import accuracy
from .base import Lookup, Tensors, load_state
from .dense import role_indices


class DenseGenerator:
    """The original on all of D, the retrain on D_r (the retain classes), each from the seed's
    initialisation, with the generator recipe (``env.recipe``). ``task`` is what of the task
    shapes the trained weights (its name and image side), added to the cache key; what only
    shapes evaluation (mode, box) keys the metric memo instead."""

    def __init__(self, task: Mapping[str, Any]) -> None:
        self.task = dict(task)

    def key(self) -> dict[str, Any]:
        return {"task": self.task}

    def uses_forget_set(self, role: str) -> bool:
        return role != "original"

    def produce(self, role: str, env: TrainEnv, lookup: Lookup) -> tuple[Tensors, dict[str, Any]]:
        torch.manual_seed(env.seed)
        model = env.build_model()
        seconds = train_generator(model, env.data.train_x, role_indices(role, env), env.recipe,
                                  seed=env.seed, progress=env.progress, desc=role)
        return model.state_dict(), {"train_seconds": seconds}

    def load(self, role: str, tensors: Tensors, meta: dict[str, Any], env: TrainEnv,
             lookup: Lookup) -> tuple[nn.Module, dict[str, Any]]:
        return load_state(env, tensors), {}


class GeneratorJudge:
    """The role ``judge`` of task=inpainting: a small CNN on every class of the job's training
    images (32x32), with its own recipe and seed. Its key replaces the job's model, recipe and
    seed with its own, so every job on the same dataset shares one judge."""

    name = "judge"

    def __init__(self, *, channels: Annotated[list[PositiveInt], NonEmpty()] = (16, 32, 64),  # type: ignore[assignment]
                 epochs: Epochs = 3, batch_size: BatchSize = 128, lr: LearningRate = 0.05,
                 seed: Seed = 7919) -> None:
        self.channels = tuple(int(c) for c in channels)
        self.epochs, self.batch_size, self.lr, self.seed = epochs, batch_size, lr, seed

    def key(self) -> dict[str, Any]:
        return {"model": {"judge": "generative", "channels": list(self.channels)},
                "train": {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr},
                "seed": self.seed}

    def uses_forget_set(self, role: str) -> bool:
        return False

    def produce(self, role: str, env: TrainEnv, lookup: Lookup) -> tuple[Tensors, dict[str, Any]]:
        from ..training import stopwatch

        with stopwatch(env.device) as clock:
            judge = train_judge(env.data.train_x, env.data.train_y, seed=self.seed,
                                epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                channels=self.channels, progress=env.progress)
        test_acc = accuracy(judge, env.data.test_x, env.data.test_y)
        return judge.state_dict(), {"train_seconds": clock["seconds"], "test_accuracy": test_acc}

    def load(self, role: str, tensors: Tensors, meta: dict[str, Any], env: TrainEnv,
             lookup: Lookup) -> tuple[nn.Module, dict[str, Any]]:
        judge = build_judge(env.data.num_classes, self.channels).to(env.device)
        judge.load_state_dict({k: v.to(env.device) for k, v in tensors.items()})
        return judge.eval(), {}

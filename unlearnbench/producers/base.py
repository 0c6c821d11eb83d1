"""The producer protocol and the Reference a role resolves to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from ..context import TrainEnv

Tensors = dict[str, torch.Tensor]


@dataclass
class Reference:
    """A role's trained model (original, retrain, a training variant), as cached."""

    role: str
    seed: int
    model: Any                       # an nn.Module; an ensemble.Ensemble for ensemble roles
    seconds: float                   # the recorded training time (RTE of the retrain)
    meta: dict[str, Any]
    key: str                         # cache key
    weights_sha256: str
    artifacts: dict[str, Any] = field(default_factory=dict)  # masks, recorded updates, ...


class Lookup(Protocol):
    """How a producer reaches other references while producing its own."""

    def wrapped(self, role: str) -> Reference:
        """The role as made by the producers this one wraps."""
        ...

    def sibling(self, role: str) -> Reference:
        """Another role made by the same stack (e.g. the sparse original for the retrain)."""
        ...


class Producer(Protocol):
    """Makes the weights of a role. ``produce`` returns tensors and a meta dict with
    ``train_seconds``; ``load`` turns a cache entry back into a model and its artifacts."""

    def key(self) -> dict[str, Any]:
        """What this producer adds to the cache key material."""
        ...

    def uses_forget_set(self, role: str) -> bool:
        """Whether the weights of ``role`` depend on D_f (its digest joins the key)."""
        ...

    def produce(self, role: str, env: TrainEnv, lookup: Lookup) -> tuple[Tensors, dict[str, Any]]:
        ...

    def load(self, role: str, tensors: Tensors, meta: dict[str, Any], env: TrainEnv,
             lookup: Lookup) -> tuple[nn.Module, dict[str, Any]]:
        ...


def load_state(env: TrainEnv, state: Tensors) -> nn.Module:
    """A fresh model of the job's architecture holding ``state``, in eval mode."""
    model = env.build_model()
    model.load_state_dict({k: v.to(env.device) for k, v in state.items()})
    return model.eval()

"""N models of the job's recipe trained at once (``ensemble.train_ensemble``) and cached as
one entry: the originals (all of D) or the retrains (D_r) of the per-example privacy protocol.

Member seeds: the originals take ``seed .. seed + N - 1`` (member 0 is the job's own original,
up to float rounding), the retrains ``seed + N .. seed + 2N - 1``, so no retrain shares an
initialisation or a data order with an original it is compared with.
"""

from __future__ import annotations

from typing import Any

from ..context import TrainEnv
from ..ensemble import Ensemble, train_ensemble
from .base import Lookup, Tensors

ORIGINAL_ENSEMBLE = "original_ensemble"
RETRAIN_ENSEMBLE = "retrain_ensemble"
ROLES = (ORIGINAL_ENSEMBLE, RETRAIN_ENSEMBLE)


def member_seeds(role: str, seed: int, n_models: int) -> list[int]:
    first = seed if role == ORIGINAL_ENSEMBLE else seed + n_models
    return list(range(first, first + n_models))


class DenseEnsemble:
    """The producer of both ensemble roles."""

    name = "ensemble"

    def __init__(self, *, n_models: int) -> None:
        self.n_models = n_models

    def key(self) -> dict[str, Any]:
        return {"ensemble": {"n_models": self.n_models, "seeds": "seed + i, retrain + N"}}

    def uses_forget_set(self, role: str) -> bool:
        return role == RETRAIN_ENSEMBLE

    def produce(self, role: str, env: TrainEnv, lookup: Lookup) -> tuple[Tensors, dict[str, Any]]:
        seeds = member_seeds(role, env.seed, self.n_models)
        rows = None if role == ORIGINAL_ENSEMBLE else [env.split.retain] * self.n_models
        ensemble, seconds = train_ensemble(env.build_model, env.data.train_x, env.data.train_y,
                                           env.recipe, seeds, indices_per_member=rows,
                                           progress=env.progress, desc=role)
        return ensemble.state_dict(), {"train_seconds": seconds, "seeds": seeds}

    def load(self, role: str, tensors: Tensors, meta: dict[str, Any], env: TrainEnv,
             lookup: Lookup) -> tuple[Ensemble, dict[str, Any]]:
        ensemble = Ensemble.from_state_dict(env.build_model, tensors).to(env.device)
        return ensemble, {"seeds": [int(s) for s in meta["seeds"]]}

"""References: the roles a job compares (the original, the retrain, a method's training
variant), each trained once by its stack of producers and cached, content-addressed.

``References.get(role, seed=None)`` returns a :class:`Reference` (model, recorded training
seconds, meta, artifacts such as pruning masks). The seed is an argument: "the retrain with
seed s" of an ensemble is ``get("retrain", seed=s)`` with the job's forget set. A job of the
privacy protocol also has the roles ``original_ensemble`` and ``retrain_ensemble``
(producers/ensemble.py): N models each, one cache entry per ensemble, its ``model`` an
``ensemble.Ensemble``. A role's cache key is the key material of the job (dataset, model,
recipe, seed, device, role, and the forget set's digest when the weights depend on it) plus
what each producer of its stack adds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from .cache import ModelCache, canonical_json
from .context import TrainEnv, collecting
from .producers.base import Producer, Reference
from .producers.dense import Dense
from .producers.ensemble import ROLES as ENSEMBLE_ROLES
from .training import stopwatch

BASE_ROLES = ("original", "retrain")
VARIANT = "variant"  # the role of a method's training producer (Amnesiac, SISA)
JUDGE = "judge"      # an independent classifier for evaluation only (eval.judge)
# Roles a metric may ask for through ``env.reference_model`` (never a method).
METRIC_ROLES = (*BASE_ROLES, JUDGE)
MEMO_FORMAT = 2  # {"metrics": ..., "artifacts": ...}


class References:
    """The reference models of one job, got once (cache hit or trained) and kept."""

    def __init__(self, env: TrainEnv, cfg: Mapping[str, Any], cache: ModelCache,
                 stacked: list[Producer], variant: Producer | None = None,
                 evaluate: Callable[[Any, TrainEnv], dict[str, Any]] | None = None,
                 log: Callable[[str], None] = print, judge: Producer | None = None,
                 ensemble: Producer | None = None, base: Producer | None = None) -> None:
        """``cfg``: the resolved job config; ``stacked``: producers on top of dense training
        for the original and the retrain (pruning); ``variant``: a method's own producer;
        ``evaluate``: the task's per-model metrics (memoised for references); ``judge``: the
        producer of the evaluation-only judge classifier (eval.judge); ``ensemble``: the
        producer of the ensemble roles (privacy protocol); ``base``: how the task trains the
        original and the retrain (dense classifier training by default).

        Metrics reach the original, the retrain and the judge through
        ``env.reference_model(role)``, which this sets on ``env``."""
        self.env, self.cfg, self.cache, self.log = env, cfg, cache, log
        self.stacks: dict[str, list[Producer]] = {role: [base or Dense(), *stacked]
                                                 for role in BASE_ROLES}
        if variant is not None:
            self.stacks[VARIANT] = [variant]
        if judge is not None:
            self.stacks[JUDGE] = [judge]
        if ensemble is not None:
            self.stacks.update({role: [ensemble] for role in ENSEMBLE_ROLES})
        self.evaluate = evaluate
        self.timings: dict[str, float] = {}
        self._got: dict[tuple[str, int, int], Reference] = {}
        self._memos: dict[tuple[str, int], dict[str, Any]] = {}
        env.reference = self.metric_model

    def metric_model(self, role: str) -> Any:
        """A reference model for a metric: the original, the retrain or the judge."""
        if role not in METRIC_ROLES:
            raise KeyError(f"metrics may ask for {', '.join(METRIC_ROLES)}, not {role!r}")
        if role == JUDGE and JUDGE not in self.stacks:
            raise RuntimeError("a metric needs the judge classifier: configure eval.judge")
        return self.get(role).model

    # -- key material

    def key_material(self, role: str, seed: int, stack: list[Producer]) -> dict[str, Any]:
        name = role if role != VARIANT else f"variant:{getattr(stack[-1], 'name', 'variant')}"
        material: dict[str, Any] = {
            "dataset": dict(self.cfg["dataset"]),
            "model": dict(self.cfg["model"]),
            "train": asdict(self.env.recipe),
            "seed": seed,
            "device": self.env.device.type,
            "role": name,
        }
        if self.cfg.get("validation"):  # trained without the validation split (tuning)
            material["validation"] = self.cfg["validation"]
        if any(p.uses_forget_set(role) for p in stack):
            material["forget_sha256"] = self.env.split.digest
        if self.env.split.transform is not None:  # changed (poisoned) data: never a clean key
            material["data_transform"] = self.env.split.transform.key()
        for producer in stack:
            material.update(producer.key())
        return material

    # -- roles

    def get(self, role: str, seed: int | None = None) -> Reference:
        """The role's reference for ``seed`` (the job's seed by default)."""
        if role not in self.stacks:
            raise KeyError(f"no producer for role {role!r} (roles: {', '.join(self.stacks)})")
        stack = self.stacks[role]
        return self._get(role, self.env.seed if seed is None else seed, stack)

    def _get(self, role: str, seed: int, stack: list[Producer]) -> Reference:
        memo = (role, seed, len(stack))
        if memo in self._got:
            return self._got[memo]
        env = self.env if seed == self.env.seed else self.env.with_seed(seed)
        producer = stack[-1]
        lookup = _Lookup(self, role, seed, stack)
        material = self.key_material(role, seed, stack)
        label = role if seed == self.env.seed else f"{role} (seed {seed})"
        def produce() -> tuple[Any, dict[str, Any]]:
            with stopwatch(env.device) as work:
                tensors, meta = producer.produce(role, env, lookup)
            # CPU seconds of producing it: the tuner's cost unit on CPU (see runner.cost_ratio)
            return tensors, {**meta, "train_cpu_seconds": work["cpu_seconds"]}

        with stopwatch(env.device) as clock:
            entry = self.cache.get_or_create(material, produce)
            model, artifacts = producer.load(role, entry.tensors, entry.meta, env, lookup)
        seconds = float(entry.meta["train_seconds"])
        if len(stack) == len(self.stacks[role]):  # the role itself, not a wrapped layer
            how = (f"cache hit {entry.key[:12]} (trained in {seconds:.1f}s)" if entry.hit
                   else f"trained in {seconds:.1f}s, cached as {entry.key[:12]}")
            self.log(f"{label}: {how}")
            self.timings[f"{role}_s"] = self.timings.get(f"{role}_s", 0.0) + clock["seconds"]
        ref = Reference(role=role, seed=seed, model=model, seconds=seconds, meta=entry.meta,
                        key=entry.key, weights_sha256=str(entry.meta["weights_sha256"]),
                        artifacts=artifacts)
        self._got[memo] = ref
        return ref

    # -- metrics of references

    def metrics(self, role: str, seed: int | None = None) -> dict[str, Any]:
        """The task's metrics of a reference, memoised beside its weights: every method of a
        sweep shares the same original and retrain, so their evaluation runs once."""
        return dict(self._memo(role, seed)["metrics"])

    def artifacts(self, role: str, seed: int | None = None) -> dict[str, np.ndarray]:
        """What the metrics of a reference left beyond numbers (images), memoised with them."""
        stored = self._memo(role, seed)["artifacts"]
        return {name: np.asarray(value["data"], dtype=np.float32).reshape(value["shape"])
                for name, value in stored.items()}

    def _memo(self, role: str, seed: int | None) -> dict[str, Any]:
        if self.evaluate is None:
            raise RuntimeError("References was built without an evaluate function")
        ref = self.get(role, seed)
        here = (role, ref.seed)
        if here in self._memos:
            return self._memos[here]
        evaluate = self.evaluate
        material = {"weights": ref.key, "weights_sha256": ref.weights_sha256,
                    "forget_sha256": self.env.split.digest,
                    "eval": canonical_json(self.cfg.get("eval")),
                    "task": canonical_json(self.cfg.get("task")), "format": MEMO_FORMAT}

        def compute() -> dict[str, Any]:
            env, sink = collecting(self.env if ref.seed == self.env.seed
                                   else self.env.with_seed(ref.seed))
            scores = evaluate(ref.model, env)
            return {"metrics": scores, "artifacts": {
                name: {"shape": list(a.shape), "data": np.round(a, 4).ravel().tolist()}
                for name, a in sink.items()}}

        value = self.cache.memo(material, compute, tied_to=ref.weights_sha256)
        self._memos[here] = value
        return value


class _Lookup:
    """A producer's way to the references it builds on."""

    def __init__(self, refs: References, role: str, seed: int, stack: list[Producer]) -> None:
        self.refs, self.role, self.seed, self.stack = refs, role, seed, stack

    def wrapped(self, role: str) -> Reference:
        if len(self.stack) < 2:
            raise RuntimeError(f"{type(self.stack[-1]).__name__} wraps no producer")
        return self.refs._get(role, self.seed, self.stack[:-1])

    def sibling(self, role: str) -> Reference:
        return self.refs._get(role, self.seed, self.stack)

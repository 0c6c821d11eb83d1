"""Training variants: methods that must observe or replace the original's training.

A method declares one in its YAML under the runner key ``training`` (never passed to the
method function)::

    training:
      variant: sisa     # the trainer is unlearnbench.methods.<variant>.train_variant
      shards: 5         # the variant's parameters: part of its cache key
      slices: 5

The variant's module provides

- ``train_variant(ctx, **params) -> (tensors, meta)``: train it (``ctx`` has no variant yet);
  ``meta["train_seconds"]`` is required;
- ``load_variant(ctx, tensors, meta, **params) -> dict``: the artifacts handed to the method
  as ``ctx.variant``; the key ``"original"`` holds the variant's own trained model;
- ``USES_FORGET_SET``: whether the artifacts depend on D_f (then its digest is in the key);
- ``FORMAT``: the version of what it stores, in the key (bump it when the artifacts change);
- optionally ``validate(method_cfg)``: data-free checks of the whole method config.

The runner trains a variant once and caches it under the original's key material with the role
``variant:<name>`` and the parameters, like the original and the retrain.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from omegaconf import OmegaConf

from .errors import ConfigError
from .methods.base import UnlearnContext
from .training import stopwatch

VARIANTS = ("amnesiac", "sisa")


def spec(method_cfg: Any) -> tuple[str, dict[str, Any]] | None:
    """``(variant, params)`` of a method config, or None when it trains no variant."""
    training = method_cfg.get("training") if hasattr(method_cfg, "get") else None
    if training is None:
        return None
    raw = OmegaConf.to_container(training, resolve=True) \
        if OmegaConf.is_config(training) else training
    if not isinstance(raw, dict) or "variant" not in raw:
        raise ConfigError("method.training", training,
                          f"a mapping with `variant` (one of {', '.join(VARIANTS)})")
    params = {k: v for k, v in raw.items() if k != "variant"}
    return str(raw["variant"]), params


def _module(name: str) -> ModuleType:
    if name not in VARIANTS:
        raise ConfigError("method.training.variant", name, ", ".join(VARIANTS))
    return importlib.import_module(f"unlearnbench.methods.{name}")


def validate(method_cfg: Any) -> None:
    """Data-free checks: a known variant, and the variant's own checks of the config."""
    found = spec(method_cfg)
    if found is None:
        return
    module = _module(found[0])
    if hasattr(module, "validate"):
        module.validate(method_cfg)


def prepare(job: Any) -> dict[str, Any]:
    """Train (or load from the cache) the variant the job's method declares; its artifacts.

    ``job`` is a :class:`unlearnbench.runner.Job` (data, split, recipe, seed, cache, console).
    """
    found = spec(job.cfg.method)
    if found is None:
        return {}
    name, params = found
    module = _module(name)
    ctx = UnlearnContext(data=job.data, split=job.split, recipe=job.recipe, seed=job.seed,
                         build_model=job.build_model, progress=bool(job.cfg.progress))
    material = {**job.key_material("original"), "role": f"variant:{name}", "variant": params,
                "format": module.FORMAT}
    if module.USES_FORGET_SET:
        material["forget_sha256"] = job.split.digest
    with stopwatch(job.device) as clock:
        entry = job.cache.get_or_create(material, lambda: module.train_variant(ctx, **params))
        artifacts = module.load_variant(ctx, entry.tensors, entry.meta, **params)
    seconds = float(entry.meta["train_seconds"])
    how = (f"cache hit {entry.key[:12]} (trained in {seconds:.1f}s)" if entry.hit
           else f"trained in {seconds:.1f}s, cached as {entry.key[:12]}")
    job.console.print(f"variant {name}: {how}")
    job.timings["variant_s"] = clock["seconds"]
    return {"name": name, "params": params, "train_seconds": seconds, **artifacts}

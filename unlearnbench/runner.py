"""One benchmark job: data -> scenario -> cached original & retrain -> method -> metrics.

Plain Python, callable from tests without Hydra: ``run(cfg, out_dir)``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from torch import nn

from .cache import CacheEntry, ModelCache, canonical_json
from .data import Data, load_data
from .errors import ConfigError
from .methods.base import MethodOutput, UnlearnContext
from .metrics import evaluate, gap_metrics
from .models import build_model
from .results import make_console, render, tidy, write_job
from .scenarios import Split, make_split, validate_scenario
from .sparsity import make_pruning, sparsity_columns, validate_sparsity
from .training import FitOptions, Recipe, fit, stopwatch, warm_up
from .variants import prepare as prepare_variant
from .variants import validate as validate_variant

# Keys of a method's YAML read by the runner, not passed to the method function.
RUNNER_KEYS = ("training",)
# Keys that change where things go or how they look, never what is computed.
NON_SEMANTIC_KEYS = ("progress", "results_dir", "cache_dir", "data_root", "hydra")


def method_name(method_cfg: Any) -> str:
    """`unlearnbench.methods.ft.unlearn` -> `ft`: the module is the method's name."""
    return str(method_cfg["_target_"]).rsplit(".", 2)[-2]


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", spec, "auto, cpu (no CUDA device is available here)")
    try:
        return torch.device(spec)
    except RuntimeError as exc:
        raise ConfigError("device", spec, "auto, cpu, cuda, cuda:N") from exc


def config_hash(cfg: DictConfig) -> str:
    semantic = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
                if k not in NON_SEMANTIC_KEYS}
    return hashlib.sha256(canonical_json(semantic).encode()).hexdigest()


def load_method(method_cfg: DictConfig) -> Callable[..., Any]:
    """The method as a partial of its hyperparameters; a missing module is a config error."""
    target = str(method_cfg.get("_target_", ""))
    module = target.rsplit(".", 1)[0]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError("method._target_", target, "a function in an importable module") from exc
    hyper = {k: v for k, v in method_cfg.items() if k not in RUNNER_KEYS}
    return instantiate(OmegaConf.create(hyper))


def validate_config(cfg: DictConfig) -> None:
    """Every check that needs no data and no training; raises ConfigError on bad input."""
    resolve_device(str(cfg.device))
    Recipe.from_cfg(cfg.train)
    load_method(cfg.method)
    validate_variant(cfg.method)
    validate_scenario(cfg.scenario, int(cfg.dataset.num_classes))
    validate_sparsity(cfg.get("sparsity"), Recipe.from_cfg(cfg.train).epochs)


class Job:
    """Everything one run shares between its phases."""

    def __init__(self, cfg: DictConfig, console: Console) -> None:
        self.cfg, self.console = cfg, console
        self.seed = int(cfg.seed)
        self.device = resolve_device(str(cfg.device))
        self.recipe = Recipe.from_cfg(cfg.train)
        self.method = method_name(cfg.method)
        self.method_fn = load_method(cfg.method)
        self.cache = ModelCache(cfg.cache_dir, log=lambda m: console.print(f"[yellow]{m}"))
        self.timings: dict[str, float] = {}
        self.reference_keys: dict[str, str] = {}
        self.pruning = make_pruning(self, cfg.get("sparsity"))  # None when dense
        with stopwatch(torch.device("cpu")) as clock:
            data = load_data(cfg.dataset, cfg.data_root)
            self.split: Split = make_split(cfg.scenario, data.train_y, data.num_classes, self.seed)
            self.data: Data = data.to(self.device)
        self.timings["data_s"] = clock["seconds"]
        warm_up(self.device)

    def build_model(self) -> nn.Module:
        return build_model(self.cfg.model, self.data.input_shape, self.data.num_classes).to(
            self.device)

    def key_material(self, role: str) -> dict[str, Any]:
        material = {
            "dataset": OmegaConf.to_container(self.cfg.dataset, resolve=True),
            "model": OmegaConf.to_container(self.cfg.model, resolve=True),
            "train": asdict(self.recipe),
            "seed": self.seed,
            "device": self.device.type,
            "role": role,
        }
        if role != "original":
            material["forget_sha256"] = self.split.digest
        return material

    def reference(self, role: str) -> tuple[nn.Module, float]:
        """The original (all of D) or the retrain (D_r), trained once and cached; with a
        sparsity config, their sparse variants (sparsity.py)."""
        if self.pruning is not None:
            return self.pruning.reference(role)
        return self.dense_reference(role)

    def dense_reference(self, role: str) -> tuple[nn.Module, float]:
        indices = None if role == "original" else self.split.retain

        def train() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            torch.manual_seed(self.seed)
            model = self.build_model()
            seconds = fit(model, self.data.train_x, self.data.train_y, self.recipe, seed=self.seed,
                          indices=indices, options=FitOptions(desc=role,
                                                              progress=bool(self.cfg.progress)))
            return model.state_dict(), {"train_seconds": seconds}

        entry, seconds = self.cached(role, self.key_material(role), train)
        return self.load(entry.tensors), seconds

    def cached(self, role: str, material: dict[str, Any],
               train: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]]
               ) -> tuple[CacheEntry, float]:
        """Get or train a cache entry, say which, and time it."""
        with stopwatch(self.device) as clock:
            entry = self.cache.get_or_create(material, train)
        seconds = float(entry.meta["train_seconds"])
        how = (f"cache hit {entry.key[:12]} (trained in {seconds:.1f}s)" if entry.hit
               else f"trained in {seconds:.1f}s, cached as {entry.key[:12]}")
        self.console.print(f"{role}: {how}")
        self.timings[f"{role}_s"] = clock["seconds"]
        self.reference_keys[role] = entry.key
        return entry, seconds

    def load(self, tensors: dict[str, torch.Tensor]) -> nn.Module:
        model = self.build_model()
        model.load_state_dict(tensors)
        model.eval()
        return model

    def reference_metrics(self, role: str, model: nn.Module) -> dict[str, float]:
        """Metrics of a cached reference model, memoised beside it: every method of a sweep
        shares the same original and retrain, so their (SVC-heavy) evaluation runs once."""
        material = {"weights": self.reference_keys[role], "forget_sha256": self.split.digest,
                    "eval": OmegaConf.to_container(self.cfg.eval, resolve=True)}
        return self.cache.memo(material, lambda: evaluate(model, self.data, self.split,
                                                          self.cfg.eval))

    def unlearn(self, original: nn.Module, retrain: nn.Module, retrain_s: float) -> dict[str, Any]:
        """Apply the method to a copy of the original; a failure becomes a `failed` row."""
        # A method that declares a training variant (Amnesiac, SISA) gets it, trained untimed.
        self.variant = prepare_variant(self)
        ctx = UnlearnContext(data=self.data, split=self.split, recipe=self.recipe, seed=self.seed,
                             build_model=self.build_model, retrain=retrain,
                             retrain_seconds=retrain_s, progress=bool(self.cfg.progress),
                             variant=self.variant,
                             masks=self.pruning.masks if self.pruning else None)
        try:
            with stopwatch(self.device) as clock:
                out = self.method_fn(copy.deepcopy(original), ctx)
            out = out if isinstance(out, MethodOutput) else MethodOutput(out)
            if not all(torch.isfinite(p).all() for p in out.model.state_dict().values()
                       if p.is_floating_point()):
                raise FloatingPointError("non-finite weights after unlearning")
        except Exception as exc:  # the sweep goes on; the row says why
            self.console.print(f"[red]{self.method} failed: {type(exc).__name__}: {exc}")
            self.timings["method_s"] = float("nan")
            return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        self.timings["method_s"] = clock["seconds"]
        rte = clock["seconds"] if out.rte_s is None else out.rte_s
        if out.extras:  # method-specific columns, also in metrics.csv
            self.console.print(f"{self.method}: " + ", ".join(
                f"{k} {v:.4g}" for k, v in out.extras.items()))
        return {"model": out.model, "RTE_s": rte, **out.extras}


def run(cfg: DictConfig, out_dir: str | Path | None = None,
        console: Console | None = None) -> pd.DataFrame:
    """Run one job and return its tidy rows; with ``out_dir`` also write the job's files."""
    console = console or make_console()
    job = Job(cfg, console)  # validates everything before any training or writing
    original, _ = job.reference("original")
    retrain, retrain_s = job.reference("retrain")
    result = job.unlearn(original, retrain, retrain_s)

    chash = config_hash(cfg)
    base = {"run_id": Path(out_dir).name if out_dir else chash[:12],
            "dataset": cfg.dataset.name, "model": cfg.model.name, "scenario": cfg.scenario.name,
            "seed": job.seed, "method": job.method, "config_hash": chash,
            **sparsity_columns(cfg.get("sparsity"))}
    with stopwatch(job.device) as clock:
        ref = job.reference_metrics("retrain", retrain)
        rows = [
            {**base, "role": "original", "status": "ok",
             **job.reference_metrics("original", original)},
            {**base, "role": "retrain", "status": "ok", **ref, "RTE_s": retrain_s, "speedup": 1.0,
             **gap_metrics(ref, ref)},
        ]
        unlearned = {**base, "role": "unlearned", "status": result.pop("status", "ok")}
        model = result.pop("model", None)
        if model is not None:
            try:
                scores = evaluate(model, job.data, job.split, cfg.eval)
            except FloatingPointError as exc:  # diverged without NaN weights: a failed row
                result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
            else:
                unlearned.update(scores, **gap_metrics(scores, ref))
                rte = result["RTE_s"]
                unlearned["speedup"] = retrain_s / rte if rte > 0 else math.inf
        unlearned.update(result)
        rows.append(unlearned)
    job.timings["metrics_s"] = clock["seconds"]
    df = tidy(rows)

    render(df, f"{cfg.dataset.name} / {cfg.model.name} / {cfg.scenario.name} / seed {job.seed}: "
           f"{job.method}", console)
    console.print("phases (s): " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in job.timings.items()))
    if out_dir is not None:
        write_job(Path(out_dir), df, job.split.forget.numpy(), {
            "config.yaml": OmegaConf.to_yaml(cfg, resolve=True),
            "timings.json": json.dumps(job.timings, indent=2),
        })
    return df

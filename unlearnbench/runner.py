"""One benchmark job, the flow only:
validate -> task environment -> references (original, retrain) -> method -> metrics -> rows.

Plain Python, callable from tests without Hydra: ``run(cfg, out_dir)``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from . import schema
from .cache import ModelCache
from .context import MethodContext, TrainEnv, method_context
from .errors import ConfigError
from .methods.base import MethodOutput
from .references import VARIANT, References
from .results import make_console, render, tidy, write_job
from .training import stopwatch, warm_up
from .validation import Plan, check_with_data, validate


def _finite_weights(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.state_dict().values()
               if p.is_floating_point())


def method_view(plan: Plan, refs: References, seed: int | None = None,
                masks: dict[str, torch.Tensor] | None = None) -> MethodContext:
    """The method's context for the job's seed (or another one: an ensemble member), with its
    training variant's artifacts (trained or loaded untimed, like the original)."""
    variant: dict[str, Any] = {}
    if plan.variant is not None:
        ref = refs.get(VARIANT, seed)
        variant = {"original": ref.model, "train_seconds": ref.seconds, **ref.artifacts}
    env = refs.env if seed is None else refs.env.with_seed(seed)
    return method_context(env, plan.method, plan.runner.access, masks=masks, variant=variant)


def apply_method(plan: Plan, refs: References, console: Console) -> dict[str, Any]:
    """The method on a copy of the original, timed; a failure becomes a `failed` row."""
    original = refs.get("original")
    if plan.runner.same_as_role is not None:  # `retrain`: the cached reference itself
        ref = refs.get(plan.runner.same_as_role)
        return {"model": ref.model, "RTE_s": ref.seconds}
    ctx = method_view(plan, refs, masks=original.artifacts.get("masks"))
    try:
        with stopwatch(refs.env.device) as clock:
            out = plan.method_fn(copy.deepcopy(original.model), ctx)
        out = out if isinstance(out, MethodOutput) else MethodOutput(out)
        if not _finite_weights(out.model):
            raise FloatingPointError("non-finite weights after unlearning")
    except Exception as exc:  # the sweep goes on; the row says why
        console.print(f"[red]{plan.method} failed: {type(exc).__name__}: {exc}")
        refs.timings["method_s"] = math.nan
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    refs.timings["method_s"] = clock["seconds"]
    if out.extras:  # method-specific columns, also in metrics.csv
        console.print(f"{plan.method}: " + ", ".join(f"{k} {v:.4g}"
                                                    for k, v in out.extras.items()))
    result = {"model": out.model, "RTE_s": clock["seconds"] if out.rte_s is None else out.rte_s,
              **out.extras}
    if out.extra_models:
        result.update(plan.task.test_accuracy(out.extra_models, refs.env))
    return result


@dataclass
class Prepared:
    """A validated job with its environment and references (nothing trained yet)."""

    plan: Plan
    env: TrainEnv
    refs: References
    console: Console
    timings: dict[str, float]


def prepare(cfg: DictConfig, console: Console | None = None) -> Prepared:
    """Validate every key, load the data, draw the split, check counts against the data."""
    console = console or make_console()
    plan = validate(cfg)  # every key, before anything is trained or written
    with stopwatch(torch.device("cpu")) as clock:
        env = plan.task.environment(plan.cfg, plan.device, console.print)
        check_with_data(plan, env)
    warm_up(plan.device)
    cache = ModelCache(plan.cfg["cache_dir"], log=lambda m: console.print(f"[yellow]{m}"))
    refs = References(env, plan.cfg, cache, plan.stacked, plan.variant, plan.task.evaluate,
                      console.print, ensemble=plan.ensemble)
    return Prepared(plan, env, refs, console, {"data_s": clock["seconds"]})


def run_method(cfg: DictConfig, console: Console | None = None
               ) -> tuple[Prepared, dict[str, Any]]:
    """The job up to the unlearned model: its references and the method's raw result
    (``model``, ``RTE_s``, extras; or ``status=failed`` and ``reason``)."""
    job = prepare(cfg, console)
    if job.plan.privacy is not None:
        raise ConfigError("n_models", job.plan.privacy.n_models, "absent (n_models and the "
                          "privacy group belong to unlearnbench-privacy)")
    job.refs.get("original")
    job.refs.get("retrain")
    return job, apply_method(job.plan, job.refs, job.console)


def run(cfg: DictConfig, out_dir: str | Path | None = None,
        console: Console | None = None) -> pd.DataFrame:
    """Run one job and return its tidy rows; with ``out_dir`` also write the job's files."""
    job, result = run_method(cfg, console)
    plan, env, refs, console, timings = job.plan, job.env, job.refs, job.console, job.timings
    task, cfg_plain = plan.task, plan.cfg
    retrain = refs.get("retrain")

    chash = schema.config_hash(cfg_plain)
    base = {"run_id": Path(out_dir).name if out_dir else chash[:12],
            "dataset": cfg_plain["dataset"]["name"], "model": cfg_plain["model"]["name"],
            "scenario": cfg_plain["scenario"]["name"], "seed": plan.seed, "method": plan.method,
            "access": plan.runner.access, "config_hash": chash, **plan.columns}
    with stopwatch(plan.device) as clock:
        ref = refs.metrics("retrain")
        rows = [
            {**base, "role": "original", "status": "ok", **refs.metrics("original")},
            {**base, "role": "retrain", "status": "ok", **ref, "RTE_s": retrain.seconds,
             "speedup": 1.0, **task.compare(ref, ref)},
        ]
        unlearned = {**base, "role": "unlearned", "status": result.pop("status", "ok")}
        model = result.pop("model", None)
        if model is not None:
            try:
                scores = task.evaluate(model, env)
            except FloatingPointError as exc:  # diverged without NaN weights: a failed row
                result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
            else:
                unlearned.update(scores, **task.compare(scores, ref))
                rte = result["RTE_s"]
                unlearned["speedup"] = retrain.seconds / rte if rte > 0 else math.inf
        unlearned.update(result)
        rows.append(unlearned)
    timings.update(refs.timings)
    timings["metrics_s"] = clock["seconds"]
    df = tidy(rows, task.columns)

    render(df, f"{base['dataset']} / {base['model']} / {base['scenario']} / seed {plan.seed}: "
           f"{plan.method}", console)
    console.print("phases (s): " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in timings.items()))
    if out_dir is not None:
        write_job(Path(out_dir), df, env.split.forget.numpy(), {
            "config.yaml": OmegaConf.to_yaml(OmegaConf.create(cfg_plain)),
            "timings.json": json.dumps(timings, indent=2),
        })
    return df


def objective(df: pd.DataFrame, cfg: DictConfig) -> float:
    """The job's objective for a tuner: the task's objective of the unlearned row."""
    plan = validate(cfg)
    rows = df[df.role == "unlearned"]
    return plan.task.objective(rows.iloc[0].to_dict()) if len(rows) else math.inf

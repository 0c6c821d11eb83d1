"""One benchmark job, the flow only:
validate -> task environment -> references (original, retrain) -> method -> metrics -> rows.

Plain Python, callable from tests without Hydra: ``run(cfg, out_dir)``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from . import schema
from .cache import ModelCache
from .context import CheckpointLog, MethodContext, TrainEnv, collecting, method_context
from .data import Data
from .errors import ConfigError
from .methods.base import MethodOutput
from .params import keyword_parameters
from .producers.base import Reference
from .references import VARIANT, References
from .results import make_console, render, tidy, write_job
from .training import cpu_budget, stopwatch, warm_up
from .tuning import method_code
from .validation import Plan, check_with_data, validate


def _finite_weights(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.state_dict().values()
               if p.is_floating_point())


def cost_ratio(seconds: float, cpu_seconds: float | None, retrain: Reference,
               device: torch.device) -> float:
    """The unlearning step's cost over the retrain's, the tuner's feasibility measure
    (``tune.max_cost``): process CPU seconds on a CPU device, which other processes sharing
    the machine barely change; wall seconds otherwise (GPU time, synchronised), or when the
    method reports its own cost (``MethodOutput.rte_s``) or the retrain's CPU time is unknown
    (cached before it was recorded)."""
    retrain_cpu = retrain.meta.get("train_cpu_seconds")
    if device.type == "cpu" and cpu_seconds is not None and retrain_cpu:
        return cpu_seconds / float(retrain_cpu)
    return seconds / retrain.seconds if retrain.seconds > 0 else math.inf


def _trial_budget(plan: Plan, refs: References) -> float | None:
    """A tuning trial (``tune.stop_at_max_cost``) on a CPU stops once its step has cost
    ``tune.max_cost`` x the retrain's CPU seconds: it is infeasible whatever it scores, so its
    remaining epochs would be wasted. None (no limit) otherwise."""
    tune = plan.cfg["tune"]
    if not tune.get("stop_at_max_cost") or refs.env.device.type != "cpu":
        return None
    retrain_cpu = refs.get("retrain").meta.get("train_cpu_seconds")
    return float(tune["max_cost"]) * float(retrain_cpu) if retrain_cpu else None


def method_view(plan: Plan, refs: References, seed: int | None = None,
                masks: dict[str, torch.Tensor] | None = None,
                checkpoints: CheckpointLog | None = None) -> MethodContext:
    """The method's context for the job's seed (or another one: an ensemble member), with its
    training variant's artifacts (trained or loaded untimed, like the original)."""
    variant: dict[str, Any] = {}
    if plan.variant is not None:
        ref = refs.get(VARIANT, seed)
        variant = {"original": ref.model, "train_seconds": ref.seconds, **ref.artifacts}
    env = refs.env if seed is None else refs.env.with_seed(seed)
    return method_context(env, plan.method, plan.runner.access, masks=masks, variant=variant,
                          checkpoint=checkpoints)


def apply_method(plan: Plan, refs: References, console: Console,
                 checkpoints: CheckpointLog | None = None) -> dict[str, Any]:
    """The method on a copy of the original, timed; a failure becomes a `failed` row.
    ``checkpoints`` collects the intermediate models the method hands to ``ctx.checkpoint``."""
    original = refs.get("original")
    if plan.runner.same_as_role is not None:  # `retrain`: the cached reference itself
        ref = refs.get(plan.runner.same_as_role)
        return {"model": ref.model, "RTE_s": ref.seconds, "cost_ratio": 1.0}
    ctx = method_view(plan, refs, masks=original.artifacts.get("masks"),
                      checkpoints=checkpoints)
    try:
        with stopwatch(refs.env.device) as clock, cpu_budget(_trial_budget(plan, refs)):
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
    rte = clock["seconds"] if out.rte_s is None else out.rte_s
    cpu = clock["cpu_seconds"] if out.rte_s is None else None
    result = {"model": out.model, "RTE_s": rte,
              "cost_ratio": cost_ratio(rte, cpu, refs.get("retrain"), refs.env.device),
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
    checkpoints: CheckpointLog


def prepare(cfg: DictConfig | Plan, console: Console | None = None,
            data: Data | None = None) -> Prepared:
    """Validate every key (unless given a validated Plan), load the data (unless given),
    draw the split, check counts against the data."""
    console = console or make_console()
    plan = cfg if isinstance(cfg, Plan) else validate(cfg)  # before anything trains or writes
    note = tuned_note(plan)
    if note:
        console.print(f"[cyan]{note}")
    with stopwatch(torch.device("cpu")) as clock:
        env = plan.task.environment(plan.cfg, plan.device, console.print, data)
        check_with_data(plan, env)
    warm_up(plan.device)
    cache = ModelCache(plan.cfg["cache_dir"], log=lambda m: console.print(f"[yellow]{m}"))
    refs = References(env, plan.cfg, cache, plan.stacked, plan.variant, plan.task.evaluate,
                      console.print, judge=plan.judge, ensemble=plan.ensemble,
                      base=plan.task.base_producer())
    return Prepared(plan, env, refs, console, {"data_s": clock["seconds"]}, CheckpointLog())


def run_method(cfg: DictConfig | Plan, console: Console | None = None,
               data: Data | None = None) -> tuple[Prepared, dict[str, Any]]:
    """The job up to the unlearned model: its references and the method's raw result
    (``model``, ``RTE_s``, extras; or ``status=failed`` and ``reason``)."""
    job = prepare(cfg, console, data)
    if job.plan.privacy is not None:
        raise ConfigError("n_models", job.plan.privacy.n_models, "absent (n_models and the "
                          "privacy group belong to unlearnbench-privacy)")
    job.refs.get("original")
    job.refs.get("retrain")
    return job, apply_method(job.plan, job.refs, job.console, job.checkpoints)


class Extension(Protocol):
    """What an application adds to a job (transfer learning): columns per role, computed from
    the job's models, and files beside metrics.csv."""

    def columns(self, job: Prepared, models: Mapping[str, torch.nn.Module]
                ) -> dict[str, dict[str, Any]]:
        """{role: {column: value}} for the roles in ``models``."""
        ...

    def files(self) -> dict[str, str]:
        ...


def run(cfg: DictConfig | Plan, out_dir: str | Path | None = None,
        console: Console | None = None, *, extension: Extension | None = None,
        config_hash: str | None = None, data: Data | None = None) -> pd.DataFrame:
    """Run one job and return its tidy rows; with ``out_dir`` also write the job's files.
    ``config_hash``: the hash of the config the user composed, when ``cfg`` is a plan derived
    from it (so a rerun of a sweep finds the job); ``data``: the dataset, already loaded."""
    job, result = run_method(cfg, console, data)
    plan, env, refs, console, timings = job.plan, job.env, job.refs, job.console, job.timings
    task, cfg_plain = plan.task, plan.cfg
    retrain = refs.get("retrain")

    chash = config_hash or schema.config_hash(cfg_plain)
    base = {"run_id": Path(out_dir).name if out_dir else chash[:12],
            "dataset": cfg_plain["dataset"]["name"], "model": cfg_plain["model"]["name"],
            "scenario": cfg_plain["scenario"]["name"], "seed": plan.seed, "method": plan.method,
            "access": plan.runner.access, "config_hash": chash, **plan.columns}
    with stopwatch(plan.device) as clock:
        ref = refs.metrics("retrain")
        orig = refs.metrics("original")
        rows = [  # the original's gaps say how far doing nothing is from retraining
            {**base, "role": "original", "status": "ok", **orig,
             **task.compare(orig, ref)},
            {**base, "role": "retrain", "status": "ok", **ref, "RTE_s": retrain.seconds,
             "speedup": 1.0, **task.compare(ref, ref)},
        ]
        artifacts = {role: refs.artifacts(role) for role in ("original", "retrain")}
        unlearned = {**base, "role": "unlearned", "status": result.pop("status", "ok")}
        model = result.pop("model", None)
        if model is not None:
            try:
                scoring_env, artifacts["unlearned"] = collecting(env)
                scores = task.evaluate(model, scoring_env)
            except FloatingPointError as exc:  # diverged without NaN weights: a failed row
                result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
            else:
                unlearned.update(scores, **task.compare(scores, ref))
                rte = result["RTE_s"]
                unlearned["speedup"] = retrain.seconds / rte if rte > 0 else math.inf
        unlearned.update(result)
        rows.append(unlearned)
        files = task.figures(artifacts)
        if job.checkpoints.points:  # the method's learning curve, scored after it finished
            files["checkpoints.csv"] = task.curve(job.checkpoints, env).to_csv(
                index=False).encode()
    timings.update(refs.timings)
    timings["metrics_s"] = clock["seconds"]
    # each metric's own seconds (references' only when not memoised)
    timings.update({f"metric_{name}_s": s for name, s in task.seconds.items()})
    text_files: dict[str, str] = {}
    if extension is not None:
        models = {"original": refs.get("original").model, "retrain": retrain.model}
        if model is not None and unlearned["status"] == "ok":
            models["unlearned"] = model
        with stopwatch(plan.device) as clock:
            extra = extension.columns(job, models)
        for row in rows:
            row.update(extra.get(row["role"], {}))
        timings["extension_s"] = clock["seconds"]
        text_files = extension.files()
    df = tidy(rows, task.columns)

    render(df, f"{base['dataset']} / {base['model']} / {base['scenario']} / seed {plan.seed}: "
           f"{plan.method}", console, getattr(task, "shown", None))
    console.print("phases (s): " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in timings.items()))
    if out_dir is not None:
        write_job(Path(out_dir), df, env.split.forget.numpy(), {
            "config.yaml": OmegaConf.to_yaml(OmegaConf.create(cfg_plain)),
            "timings.json": json.dumps(timings, indent=2), **text_files,
        }, files)
    return df


def objective(df: pd.DataFrame, cfg: DictConfig) -> float:
    """The job's objective for a tuner: the task's objective of the unlearned row, inf when
    its unlearning step cost more than ``tune.max_cost`` x the retrain's time (infeasible)."""
    plan = validate(cfg)
    rows = df[df.role == "unlearned"]
    if not len(rows):
        return math.inf
    row = rows.iloc[0].to_dict()
    if not schema.within_budget(row, float(plan.cfg["tune"]["max_cost"])):
        return math.inf
    return plan.task.objective(row)


def trial_seeds(cfg: DictConfig) -> list[int]:
    """The seeds a job scores. A tuning trial (``validation`` on) scores ``tune.seeds`` of
    them, its own ``seed`` and the next ones, so a setting is not selected for one lucky draw
    of the original, the retrain and the method's own randomness; any other job its
    ``seed``."""
    seed = int(cfg["seed"])
    if not cfg.get("validation"):
        return [seed]
    return [seed + i for i in range(int(cfg["tune"]["seeds"]))]


def with_seed(cfg: DictConfig, seed: int) -> DictConfig:
    """A copy of the job's config with another ``seed``."""
    other = copy.deepcopy(cfg)
    other.seed = seed
    return other


def tuned_note(plan: Plan) -> str | None:
    """One line on where the method's hyperparameters come from: the tuned file (and the keys
    the command line overrode), or that this setting was never tuned."""
    cfg = plan.cfg
    if plan.cfg.get("validation"):
        return None  # a tuning trial: the search space sets them
    setting = "/".join(str(cfg[g]["name"]) for g in ("dataset", "model", "scenario"))
    tuned = plan.runner.tuned
    if not tuned:
        if not keyword_parameters(plan.method_fn.func):  # type: ignore[attr-defined]
            return None  # nothing to tune (retrain)
        return (f"{plan.method}: no tuned hyperparameters for {setting} (never tuned, or "
                f"~tuned): plain defaults (conf/method/{plan.method}.yaml)")
    if "params" not in tuned:
        return (f"{plan.method}: tuned in {tuned.get('file')}, but no trial was feasible: "
                "plain defaults")
    changed = sorted(k for k, v in dict(tuned["params"]).items() if cfg["method"].get(k) != v)
    note = f" (overridden: {', '.join(changed)})" if changed else ""
    line = (f"{plan.method}: tuned defaults from {tuned.get('file')}{note}; validation avg_gap "
            f"{float(tuned.get('objective', math.nan)):.2f} after {tuned.get('trials')} trials")
    if tuned.get("code") and tuned["code"] != method_code(plan.method,
                                                          str(cfg["method"]["_target_"])):
        line += ("; WARNING: tuned on another version of the method's code or YAML (rerun "
                 "unlearnbench-tune for this setting)")
    return line

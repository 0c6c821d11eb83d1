"""The per-example privacy protocol (`unlearnbench-privacy`, DESIGN.md "Per-example
evaluation"): N originals, each unlearned by the method, against N retrains, example by example.

validate (the same layer as `unlearnbench`, plus the `n_models` and `privacy` keys) -> task
environment -> the ensembles ``original_ensemble`` (N seeds, all of D) and
``retrain_ensemble`` (N other seeds, D_r), one cache entry each, reused by every method ->
the method on every original (its ``unlearn_ensemble`` for all members at once where its
module offers one, else ``unlearn`` per member with that member's MethodContext) -> logits of
the three ensembles on D_f, D_r and the test set -> scores -> files.

Scores (``metrics.per_example.compare``) for three comparisons against the retrains:
``unlearned`` (the method), ``original`` (no unlearning) and ``ceiling`` (retrain vs retrain:
the first half of the retrain ensemble against the second). The ceiling has N/2 models a side,
so the method and the original are scored twice: all N against all N retrains, and their
first N/2 against the ceiling's second half (``models_per_side`` = N/2), the rows to compare
with the ceiling.
"""

from __future__ import annotations

import json
import math
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from . import schema
from .context import TrainEnv, method_context
from .ensemble import Ensemble, predict_ensemble
from .errors import ConfigError
from .methods.base import MethodOutput
from .metrics.accuracy import test_mask
from .metrics.per_example import (
    Comparison,
    EnsembleOutputs,
    compare,
    comparison_from_json,
    comparison_to_json,
    epsilon_points,
)
from .producers.base import Reference
from .producers.ensemble import ORIGINAL_ENSEMBLE, RETRAIN_ENSEMBLE
from .references import References
from .results import save_npy, text_writers, write_files
from .runner import Prepared, method_view, prepare
from .training import stopwatch
from .validation import Plan, PrivacyKeys

UNLEARNED, ORIGINAL, CEILING = "unlearned", "original", "ceiling"
# What the console shows of each comparison: (score, split) -> column
SHOWN = {("forget_score_F", "forget"): "F", ("final_score", "all"): "final",
         ("epsilon_median", "forget"): "median ε", ("ulira_acc", "forget"): "U-LiRA",
         ("klom", "forget"): "KLoM_f", ("klom", "retain"): "KLoM_r", ("klom", "test"): "KLoM_t",
         ("accuracy", "forget"): "FA", ("accuracy", "retain"): "RA", ("accuracy", "test"): "TA"}


@dataclass
class Unlearned:
    """The method applied to every original: the unlearned ensemble, or why it failed."""

    ensemble: Ensemble | None
    seconds: float           # the unlearning itself, all members (variant training excluded)
    how: str                 # "vectorised" | "per member"
    reason: str = ""


def unlearn_members(plan: Plan, refs: References, originals: Reference) -> Unlearned:
    """Each original unlearned: at once by the method's ``unlearn_ensemble``, else one by one
    by ``unlearn`` with the member's own seed (and training variant)."""
    seeds = tuple(originals.artifacts["seeds"])
    how = "vectorised" if plan.method_ensemble_fn is not None else "per member"
    try:
        if plan.method_ensemble_fn is not None:
            ctx = method_context(refs.env, plan.method, plan.runner.access, seeds=seeds)
            with stopwatch(refs.env.device) as clock:
                ensemble = plan.method_ensemble_fn(originals.model, ctx)
            seconds = clock["seconds"]
        else:
            models, seconds = [], 0.0
            for model, seed in zip(originals.model.modules(refs.env.build_model), seeds,
                                   strict=True):
                ctx = method_view(plan, refs, seed=seed)
                with stopwatch(refs.env.device) as clock:
                    out = plan.method_fn(model, ctx)
                seconds += clock["seconds"]
                models.append(out.model if isinstance(out, MethodOutput) else out)
            ensemble = Ensemble.from_modules(models)
        if not all(torch.isfinite(t).all() for t in ensemble.state_dict().values()
                   if t.is_floating_point()):
            raise FloatingPointError("non-finite weights after unlearning")
    except Exception as exc:  # the job goes on: its original and ceiling rows still count
        return Unlearned(None, math.nan, how, f"{type(exc).__name__}: {exc}")
    return Unlearned(ensemble, seconds, how)


def ensemble_outputs(ensemble: Ensemble, env: TrainEnv, batch_size: int) -> EnsembleOutputs:
    """Logits of every member on D_f, D_r and the test set (its retained classes, as TA)."""
    data, split = env.data, env.split
    device = data.train_x.device
    rows = {"forget": split.forget.to(device), "retain": split.retain.to(device)}
    keep = test_mask(data, split)
    xs = {**{s: data.train_x[r] for s, r in rows.items()}, "test": data.test_x[keep]}
    ys = {**{s: data.train_y[r] for s, r in rows.items()}, "test": data.test_y[keep]}
    return EnsembleOutputs(
        {s: predict_ensemble(env.build_model, ensemble, x, batch_size).cpu().numpy()
         for s, x in xs.items()},
        {s: y.cpu().numpy() for s, y in ys.items()})


# Bump when a score's code changes: memoised original and ceiling scores are recomputed.
SCORES_VERSION = 1


def comparisons(outputs: dict[str, EnsembleOutputs], keys: PrivacyKeys,
                memo: Callable[[str, int, Callable[[], Comparison]], Comparison] | None = None
                ) -> dict[tuple[str, int], Comparison]:
    """Every (comparison, models per side) of the job; see the module docstring. ``memo``
    may keep the original's and the ceiling's scores, which depend only on the cached
    ensembles (the same for every method)."""
    retrain = outputs["retrain"]
    half = keys.n_models // 2
    second = retrain.members(slice(half, 2 * half))
    params = dict(delta=keys.delta, shadow_fraction=keys.shadow_fraction,
                  klom_bins=keys.klom_bins, klom_mode=keys.klom_mode,
                  klom_direction=keys.klom_direction)

    def get(name: str, per_side: int, compute: Callable[[], Comparison]) -> Comparison:
        return compute() if memo is None or name == UNLEARNED else memo(name, per_side, compute)

    out = {(CEILING, half): get(CEILING, half, lambda: compare(
        retrain.members(slice(0, half)), second, **params))}
    for name in (UNLEARNED, ORIGINAL):
        if name in outputs:
            side = outputs[name]
            out[(name, keys.n_models)] = get(name, keys.n_models,
                                             lambda s=side: compare(s, retrain, **params))
            out[(name, half)] = get(name, half, lambda s=side: compare(
                s.members(slice(0, half)), second, **params))
    return out


def _memo_in_cache(refs: References, originals: Reference, retrains: Reference,
                   keys: PrivacyKeys) -> Callable[[str, int, Callable[[], Comparison]],
                                                  Comparison]:
    """Scores of the reference ensembles memoised beside them in the model cache."""
    params = {k: v for k, v in asdict(keys).items() if k != "vectorised"}

    def memo(name: str, per_side: int, compute: Callable[[], Comparison]) -> Comparison:
        material = {"privacy_scores": name, "models_per_side": per_side,
                    "original": originals.weights_sha256, "retrain": retrains.weights_sha256,
                    "forget_sha256": refs.env.split.digest, "params": params,
                    "dataset": refs.cfg["dataset"], "version": SCORES_VERSION}
        value = refs.cache.memo(material, lambda: comparison_to_json(compute()),
                                tied_to=retrains.weights_sha256)
        return comparison_from_json(value)
    return memo


def _tidy(scores: dict[tuple[str, int], Comparison], base: dict[str, Any],
          failed: Unlearned, keys: PrivacyKeys) -> pd.DataFrame:
    """One row per (comparison, models per side, score, split); the method's rows say
    `failed` (and why) when it failed."""
    rows = []
    template = next(iter(scores.values())).values
    wanted = [(UNLEARNED, keys.n_models), (UNLEARNED, keys.n_models // 2),
              (ORIGINAL, keys.n_models), (ORIGINAL, keys.n_models // 2),
              (CEILING, keys.n_models // 2)]
    for comparison, per_side in wanted:
        found = scores.get((comparison, per_side))
        status = "ok" if found is not None else "failed"
        values = found.values if found is not None else dict.fromkeys(template, math.nan)
        for (score, split), value in values.items():
            rows.append({**base, "comparison": comparison, "models_per_side": per_side,
                         "score": score, "split": split, "value": value, "status": status,
                         "reason": failed.reason if status == "failed" else ""})
    return pd.DataFrame(rows)


def _per_example(scores: dict[tuple[str, int], Comparison], forget: np.ndarray,
                 labels: np.ndarray) -> pd.DataFrame:
    frames = [pd.DataFrame({"example": forget, "label": labels, "comparison": name,
                            "models_per_side": per_side, "epsilon": c.epsilon,
                            "ulira_acc": c.ulira, "klom": c.klom_forget})
              for (name, per_side), c in scores.items()]
    return pd.concat(frames, ignore_index=True)


def _show(scores: dict[tuple[str, int], Comparison], title: str, console: Console) -> None:
    table = Table(title=title, header_style="bold")
    for column in ["comparison", "models", *SHOWN.values()]:
        table.add_column(column, justify="left" if column == "comparison" else "right")
    for (name, per_side), c in sorted(scores.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        table.add_row(name, f"{per_side} vs {per_side}",
                      *(f"{c.values[key]:.3f}" for key in SHOWN))
    console.print(table)


def objective(df: pd.DataFrame) -> float:
    """What a tuner minimises: the ceiling's F minus the method's (N/2 a side); inf when the
    method failed."""
    forget = df[(df.score == "forget_score_F") & (df.models_per_side == df.models_per_side.min())]
    values = forget.set_index("comparison")
    method = values.loc[UNLEARNED] if UNLEARNED in values.index else None
    if method is None or method.status != "ok":
        return math.inf
    return float(values.loc[CEILING].value - method.value)


def run(cfg: DictConfig, out_dir: str | Path | None = None,
        console: Console | None = None) -> pd.DataFrame:
    """Run one privacy job; return its tidy rows (and write its files into ``out_dir``)."""
    job: Prepared = prepare(cfg, console)
    plan, env, refs, console, timings = job.plan, job.env, job.refs, job.console, job.timings
    keys = plan.privacy
    if keys is None:
        raise ConfigError("n_models", "(missing)", "set by conf/privacy.yaml (compose the "
                          "privacy config: unlearnbench-privacy)")
    originals = refs.get(ORIGINAL_ENSEMBLE)
    retrains = refs.get(RETRAIN_ENSEMBLE)
    unlearned = unlearn_members(plan, refs, originals)
    if unlearned.ensemble is None:
        console.print(f"[red]{plan.method} failed: {unlearned.reason}")
    timings.update(refs.timings)
    timings["unlearn_s"] = unlearned.seconds
    batch_size = int(plan.cfg["eval"]["batch_size"])
    with stopwatch(env.device) as clock:
        ensembles = {ORIGINAL: originals.model, "retrain": retrains.model,
                     UNLEARNED: unlearned.ensemble}
        outputs = {name: ensemble_outputs(e, env, batch_size)
                   for name, e in ensembles.items() if e is not None}
    timings["predict_s"] = clock["seconds"]
    start = time.perf_counter()
    scores = comparisons(outputs, keys, _memo_in_cache(refs, originals, retrains, keys))
    timings["scores_s"] = time.perf_counter() - start

    cfg_plain = plan.cfg
    chash = schema.config_hash(cfg_plain)
    names = {g: cfg_plain[g]["name"] for g in ("dataset", "model", "scenario")}
    base = {"run_id": Path(out_dir).name if out_dir else chash[:12], **names,
            "seed": plan.seed, "method": plan.method, "n_models": keys.n_models,
            "unlearn": unlearned.how, "RTE_s": unlearned.seconds,
            "original_train_s": originals.seconds, "retrain_train_s": retrains.seconds,
            "config_hash": chash}
    df = _tidy(scores, base, unlearned, keys)
    title = (f"{names['dataset']} / {names['model']} / {names['scenario']} / seed {plan.seed}: "
             f"{plan.method} ({unlearned.how}), per-example scores vs {keys.n_models} retrains")
    # CPU seconds of the whole process so far (imports and checks included): on a shared
    # machine the wall-clock phases stretch with the load, this does not.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    timings["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    _show(scores, title, console)
    console.print("phases (s): " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in timings.items()))
    if out_dir is not None:
        forget = env.split.forget.numpy()
        per_example = _per_example(scores, forget, outputs["retrain"].labels["forget"])
        half = keys.n_models // 2
        hist = {name: scores[(name, half)].epsilon for name in (UNLEARNED, ORIGINAL, CEILING)
                if (name, half) in scores}
        labels = {UNLEARNED: plan.method, ORIGINAL: "original (no unlearning)",
                  CEILING: "ceiling (retrain vs retrain)"}
        max_eps = _max_epsilon(half)

        def histogram(path: Path) -> None:
            from .report.plots import epsilon_histogram  # matplotlib only when writing

            epsilon_histogram(path, {labels[k]: v for k, v in hist.items()}, max_eps,
                              f"{title.split(':')[0]}: {plan.method}, {half} vs {half} models")

        write_files(Path(out_dir), {
            "privacy.csv": lambda p: df.to_csv(p, index=False),
            "per_example.csv": lambda p: per_example.to_csv(p, index=False),
            "epsilon_hist.png": histogram,
            "forget_indices.npy": lambda p: save_npy(p, forget.astype(np.int64)),
            **text_writers({"config.yaml": OmegaConf.to_yaml(OmegaConf.create(cfg_plain)),
                            "timings.json": json.dumps(timings, indent=2)}),
        })
    return df


def _max_epsilon(models_per_side: int) -> float:
    """The smallest epsilon that scores no point with this many models a side."""
    eps = np.arange(0, 50, 0.5)
    return float(eps[epsilon_points(eps, models_per_side) == 0][0])

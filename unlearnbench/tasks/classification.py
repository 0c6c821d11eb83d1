"""`task=classification`: forget samples or classes of an image classifier.

The task owns its environment (dataset, forget split, model builder), its metric list
(``conf/eval``), its columns and gap metrics (``schema``) and the objective a tuner minimises.
The runner walks the roles and calls these; it knows no task by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import schema
from ..context import CheckpointLog, TrainEnv
from ..data import Data
from ..metrics.accuracy import accuracy_metrics, test_mask
from ..metrics.inversion import inversion_grid
from ..models import build_model
from ..producers.dense import Dense
from ..registry import resolve
from ..training import Recipe, accuracy, stopwatch
from .job_data import job_data

Metric = Callable[..., dict[str, float]]


class Classification:
    """The classification task of DESIGN.md; ``eval`` is the resolved ``eval`` config."""

    name = "classification"
    columns = schema.COLUMNS
    gap_metrics = schema.GAP_METRICS
    transforms_data = True  # applies a scenario's data transform (backdoor poisoning)

    def __init__(self, eval_cfg: Mapping[str, Any], allow: tuple[str, ...] = ()) -> None:
        self.batch_size = int(eval_cfg["batch_size"])
        self.metrics: list[tuple[str, Metric, dict[str, Any]]] = []
        self.seconds: dict[str, float] = {}  # wall clock per metric, summed over evaluations
        # Reference-relative columns a metric config asks for: {gap column: metric column}
        # (|X − X_retrain|) and {column: RelativeColumn} (ratios such as AIN).
        self.extra_gaps: dict[str, str] = {}
        self.relative_specs: dict[str, schema.RelativeColumn] = {}
        for name, node in (eval_cfg.get("metrics") or {}).items():
            if node is None:  # switched off: eval.metrics.<name>=null
                continue
            fn = resolve(node.get("_target_"), "metric", f"eval.metrics.{name}._target_", allow)
            self.metrics.append((name, fn, {k: v for k, v in node.items()
                                            if k not in schema.METRIC_KEYS}))
            self.extra_gaps.update(node.get("gaps") or {})
            for column, spec in (node.get("relative") or {}).items():
                self.relative_specs[column] = schema.RelativeColumn(**spec)

    @staticmethod
    def base_producer() -> Dense:
        """How the original and the retrain are trained (producers stack on top of it)."""
        return Dense()

    def environment(self, cfg: Mapping[str, Any], device: torch.device,
                    log: Callable[[str], None], data: Data | None = None) -> TrainEnv:
        """Load the data (unless given) onto the device, draw the forget split from the job's
        seed and apply the scenario's data transform, if any (a poisoned copy); with
        ``validation`` > 0 the validation split replaces the test set and the forget set is
        drawn from the rest of the training set."""
        seed = int(cfg["seed"])
        data, split = job_data(cfg, data)
        if split.transform is not None:
            data = split.transform.apply(data)
        model_cfg = cfg["model"]
        return TrainEnv(data=data.to(device), split=split, recipe=Recipe.from_cfg(cfg["train"]),
                        seed=seed, device=device,
                        model_factory=lambda shape, k: build_model(model_cfg, shape, k),
                        progress=bool(cfg["progress"]), log=log)

    def evaluate(self, model: nn.Module, env: TrainEnv) -> dict[str, float]:
        """Every configured per-model metric of one model."""
        out: dict[str, float] = {}
        for name, fn, params in self.metrics:
            with stopwatch(env.device) as clock:
                out.update(fn(model, env, self.batch_size, **params))
            self.seconds[name] = self.seconds.get(name, 0.0) + clock["seconds"]
        return out

    def compare(self, row: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float]:
        """The gaps of a model's metrics to the retrain's (absent metrics: no gaps): the
        papers' four and their mean, each metric config's extra ``gaps``, and the
        reference-relative columns its metrics declare (AIN)."""
        out = self.relative(row, reference)
        if all(m in row and m in reference for m in self.gap_metrics):
            out.update(schema.gap_metrics(row, reference, self.gap_metrics))
        for column, metric in self.extra_gaps.items():
            if metric in row and metric in reference:
                out[column] = abs(float(row[metric]) - float(reference[metric]))
        return out

    def relative(self, row: Mapping[str, Any], reference: Mapping[str, Any]
                 ) -> dict[str, float]:
        """Only the declared reference-relative columns."""
        return schema.relative_columns(row, reference, self.relative_specs)

    def curve(self, checkpoints: CheckpointLog, env: TrainEnv) -> pd.DataFrame:
        """Scores of the intermediate models a method handed to its checkpoint sink: UA, RA,
        TA, FTA (and D_f / D_r accuracy) per step, with the method's own info columns."""
        rows = []
        for point in checkpoints.points:
            model = env.build_model()
            model.load_state_dict(point.state)
            scores = accuracy_metrics(model, env, self.batch_size)
            rows.append({"step": point.step, "Df_acc": 100.0 - scores["UA"],
                         "Dr_acc": scores["RA"], **scores, **point.info})
        return pd.DataFrame(rows)

    @staticmethod
    def figures(artifacts: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, bytes]:
        """PNG files for the job folder from the metrics' artifacts, by role."""
        by_role = {role: arts["mi_inversions"] for role, arts in artifacts.items()
                   if "mi_inversions" in arts}
        return {"mi_inversions.png": inversion_grid(by_role)} if by_role else {}

    def test_accuracy(self, models: Mapping[str, nn.Module | list[nn.Module]],
                      env: TrainEnv) -> dict[str, float]:
        """`<name>_TA` for models a method wants compared (a list is averaged)."""
        keep = test_mask(env.data, env.split)
        x, y = env.data.test_x[keep], env.data.test_y[keep]
        out = {}
        for name, value in models.items():
            group = value if isinstance(value, list) else [value]
            out[f"{name}_TA"] = math.fsum(accuracy(m, x, y, self.batch_size)
                                          for m in group) / len(group)
        return out

    @staticmethod
    def objective(row: Mapping[str, Any]) -> float:
        """What a tuner minimises: the unlearned row's avg_gap (inf when it failed)."""
        value = row.get(schema.AVG_GAP, math.nan)
        if row.get("status") != "ok" or value is None or not math.isfinite(float(value)):
            return math.inf
        return float(value)

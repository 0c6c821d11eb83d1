"""`task=classification`: forget samples or classes of an image classifier.

The task owns its environment (dataset, forget split, model builder), its metric list
(``conf/eval``), its columns and gap metrics (``schema``) and the objective a tuner minimises.
The runner walks the roles and calls these; it knows no task by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .. import schema
from ..context import TrainEnv
from ..data import Data, hold_out_validation, load_data
from ..metrics.accuracy import test_mask
from ..models import build_model
from ..registry import resolve
from ..scenarios import make_split
from ..training import Recipe, accuracy

Metric = Callable[..., dict[str, float]]
# Keys of a metric config that are not the function's parameters.
METRIC_KEYS = ("_target_", "gaps")


class Classification:
    """The classification task of DESIGN.md; ``eval`` is the resolved ``eval`` config."""

    name = "classification"
    columns = schema.COLUMNS
    gap_metrics = schema.GAP_METRICS

    def __init__(self, eval_cfg: Mapping[str, Any], allow: tuple[str, ...] = ()) -> None:
        self.batch_size = int(eval_cfg["batch_size"])
        self.metrics: list[tuple[Metric, dict[str, Any]]] = []
        # Reference-relative columns a metric config asks for: {gap column: metric column}.
        self.extra_gaps: dict[str, str] = {}
        for name, node in (eval_cfg.get("metrics") or {}).items():
            if node is None:  # switched off: eval.metrics.<name>=null
                continue
            fn = resolve(node.get("_target_"), "metric", f"eval.metrics.{name}._target_", allow)
            self.metrics.append((fn, {k: v for k, v in node.items()
                                      if k not in METRIC_KEYS}))
            self.extra_gaps.update(node.get("gaps") or {})

    def environment(self, cfg: Mapping[str, Any], device: torch.device,
                    log: Callable[[str], None], data: Data | None = None) -> TrainEnv:
        """Load the data (unless given) onto the device and draw the forget split from the
        job's seed; with ``validation`` > 0 the validation split replaces the test set and the
        forget set is drawn from the rest of the training set."""
        seed = int(cfg["seed"])
        if data is None:
            data = load_data(cfg["dataset"], cfg["data_root"],
                             tuple(cfg.get("allow_targets") or ()))
        if cfg.get("validation"):
            data = hold_out_validation(data, float(cfg["validation"]))
        split = make_split(cfg["scenario"], data.train_y, data.num_classes, seed)
        model_cfg = cfg["model"]
        return TrainEnv(data=data.to(device), split=split, recipe=Recipe.from_cfg(cfg["train"]),
                        seed=seed, device=device,
                        model_factory=lambda shape, k: build_model(model_cfg, shape, k),
                        progress=bool(cfg["progress"]), log=log)

    def evaluate(self, model: nn.Module, env: TrainEnv) -> dict[str, float]:
        """Every configured per-model metric of one model."""
        out: dict[str, float] = {}
        for fn, params in self.metrics:
            out.update(fn(model, env, self.batch_size, **params))
        return out

    def compare(self, row: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float]:
        """The gaps of a model's metrics to the retrain's (absent metrics: no gaps): the
        papers' four and their mean, then each metric config's extra ``gaps``."""
        gaps: dict[str, float] = {}
        if all(m in row and m in reference for m in self.gap_metrics):
            gaps.update(schema.gap_metrics(row, reference, self.gap_metrics))
        for column, metric in self.extra_gaps.items():
            if metric in row and metric in reference:
                gaps[column] = abs(float(row[metric]) - float(reference[metric]))
        return gaps

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

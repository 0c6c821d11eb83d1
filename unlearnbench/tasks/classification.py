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
from ..data import Data, load_data
from ..metrics.accuracy import test_mask
from ..models import build_model
from ..registry import resolve
from ..scenarios import make_split
from ..training import Recipe, accuracy

Metric = Callable[..., dict[str, float]]


class Classification:
    """The classification task of DESIGN.md; ``eval`` is the resolved ``eval`` config."""

    name = "classification"
    columns = schema.COLUMNS
    gap_metrics = schema.GAP_METRICS
    transforms_data = True  # applies a scenario's data transform (backdoor poisoning)

    def __init__(self, eval_cfg: Mapping[str, Any], allow: tuple[str, ...] = ()) -> None:
        self.batch_size = int(eval_cfg["batch_size"])
        self.metrics: list[tuple[Metric, dict[str, Any]]] = []
        for name, node in (eval_cfg.get("metrics") or {}).items():
            if node is None:  # switched off: eval.metrics.<name>=null
                continue
            fn = resolve(node.get("_target_"), "metric", f"eval.metrics.{name}._target_", allow)
            self.metrics.append((fn, {k: v for k, v in node.items() if k != "_target_"}))

    def environment(self, cfg: Mapping[str, Any], device: torch.device,
                    log: Callable[[str], None], data: Data | None = None) -> TrainEnv:
        """Load the data (unless given) onto the device, draw the forget split from the
        job's seed and apply the scenario's data transform, if any (a poisoned copy)."""
        seed = int(cfg["seed"])
        data = load_data(cfg["dataset"], cfg["data_root"]) if data is None else data
        split = make_split(cfg["scenario"], data.train_y, data.num_classes, seed)
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
        for fn, params in self.metrics:
            out.update(fn(model, env, self.batch_size, **params))
        return out

    def compare(self, row: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float]:
        """The gaps of a model's metrics to the retrain's (absent metrics: no gaps)."""
        if not all(m in row and m in reference for m in self.gap_metrics):
            return {}
        return schema.gap_metrics(row, reference, self.gap_metrics)

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

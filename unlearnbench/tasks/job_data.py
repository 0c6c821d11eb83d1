"""What every task's environment starts from: the job's dataset and its forget split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..data import Data, hold_out_validation, load_data
from ..scenarios import Split, make_split


def job_data(cfg: Mapping[str, Any], data: Data | None = None) -> tuple[Data, Split]:
    """The dataset (loaded unless given) and the forget split drawn from the job's seed; with
    ``validation`` > 0 the validation split replaces the test set (tuning) and the forget set
    is drawn from the rest of the training set."""
    if data is None:
        data = load_data(cfg["dataset"], cfg["data_root"], tuple(cfg.get("allow_targets") or ()))
    if cfg.get("validation"):
        data = hold_out_validation(data, float(cfg["validation"]))
    split = make_split(cfg["scenario"], data.train_y, data.num_classes, int(cfg["seed"]))
    return data, split

"""What every task's environment starts from: the job's dataset and its forget split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..data import Data, hold_out, load_data, validation_rows
from ..scenarios import Split, make_split


def job_data(cfg: Mapping[str, Any], data: Data | None = None) -> tuple[Data, Split]:
    """The dataset (loaded unless given) and the forget split drawn from the job's seed; with
    ``validation`` > 0 a validation split of the *retain* set replaces the test set (tuning).

    The forget set is drawn first, from the whole training set, so a tuning trial forgets
    exactly the samples the test-time job forgets (same D_f, same number of steps per epoch
    over it); only D_r is 15 % smaller. Holding the validation split out first would shrink
    D_f too and tune step counts on fewer forget batches than the test run takes."""
    if data is None:
        data = load_data(cfg["dataset"], cfg["data_root"], tuple(cfg.get("allow_targets") or ()))
    split = make_split(cfg["scenario"], data.train_y, data.num_classes, int(cfg["seed"]))
    if cfg.get("validation"):
        held = validation_rows(data.train_y, data.num_classes, float(cfg["validation"]),
                               among=split.retain)
        data, split = hold_out(data, held), split.without(held)
    return data, split

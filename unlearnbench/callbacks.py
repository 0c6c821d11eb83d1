"""Hydra callback: at the end of a sweep, one summary table of every job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .report.tables import summarise


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        summarise(Path(config.hydra.sweep.dir))

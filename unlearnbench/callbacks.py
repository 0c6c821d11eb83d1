"""Hydra callbacks: at the end of a sweep, one summary table of every job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .report.tables import summarise


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        summarise(Path(config.hydra.sweep.dir))


class PrivacySummary(Callback):
    """The end of an `unlearnbench-privacy -m` sweep: its privacy tables, printed and written
    to summary.md in the sweep folder."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from .report.privacy import summarise_privacy

        summarise_privacy(Path(config.hydra.sweep.dir))

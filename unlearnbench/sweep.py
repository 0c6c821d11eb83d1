"""What a job inside a sweep needs beyond the runner: resume, crash rows, GPU choice.

- Resume: a job whose resolved config (its ``config_hash``) already has a ``done`` folder in
  the same sweep directory is skipped, wherever that folder is. Job folders are named by the
  config hash (the ``unlearnbench_hash`` resolver in ``hydra.sweep.subdir``), so extending a
  sweep's grid never reuses a finished job's folder.
- Crash rows: an unexpected exception in one job becomes a ``status=failed`` row with the
  reason, so the sweep goes on and the summary and leaderboard show the job as failed.
- GPU choice: with ``device: auto`` and several visible GPUs, job ``n`` uses ``cuda:(n mod
  count)``, so parallel jobs on one node spread over its GPUs.
"""

from __future__ import annotations

import csv
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from . import schema
from .registry import component_name
from .results import tidy, write_job

HASH_RESOLVER = "unlearnbench_hash"


def _hash_of_root(*, _root_: DictConfig) -> str:
    """The job's config hash, for folder names (the `hydra` node itself excluded)."""
    keys = [k for k in _root_.keys() if k not in schema.NON_SEMANTIC_KEYS]
    plain = OmegaConf.to_container(OmegaConf.masked_copy(_root_, keys), resolve=True)
    return schema.config_hash(plain)[:10]  # type: ignore[arg-type]


def register_resolvers() -> None:
    if not OmegaConf.has_resolver(HASH_RESOLVER):
        OmegaConf.register_new_resolver(HASH_RESOLVER, _hash_of_root)


def _first_row(job_dir: Path) -> dict[str, Any] | None:
    """The unlearned (else first) row of a finished job folder (its metrics.csv, or the
    privacy.csv of an `unlearnbench-privacy` job); None if it is unfinished or the file
    cannot be read (then the job is simply run again)."""
    if not (job_dir / schema.DONE).exists():
        return None
    for name in ("metrics.csv", "privacy.csv"):
        try:
            with open(job_dir / name, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, csv.Error):
            return None
        unlearned = [r for r in rows if "unlearned" in (r.get("role"), r.get("comparison"))]
        return (unlearned or rows or [None])[0]
    return None


def find_done(out_dir: Path, chash: str,
              warn: Callable[[str], None] | None = None) -> Path | None:
    """A finished job folder of this sweep with the same config hash, if there is one. A
    finished job in ``out_dir`` whose metrics.csv cannot be read is run again (``warn``
    says so)."""
    if warn is not None and (out_dir / schema.DONE).exists() and _first_row(out_dir) is None:
        warn(f"{out_dir / 'metrics.csv'} is unreadable (not UTF-8 CSV with rows); running "
             "this job again")
    candidates = [out_dir, *sorted(p for p in out_dir.parent.iterdir()
                                   if p.is_dir() and p != out_dir)]
    return next((job_dir for job_dir in candidates if is_done(job_dir, chash)), None)


def stored_score(path: Path, score: Callable[[pd.DataFrame], float]) -> float:
    """``score`` of a finished job's rows (``path``: its metrics.csv or privacy.csv), the
    objective a sweeper gets for a job a rerun finds finished; inf (infeasible) when they
    cannot be read."""
    try:
        rows = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError):  # pandas' parse errors are ValueErrors
        return math.inf
    return score(rows)


def is_done(job_dir: Path, chash: str) -> bool:
    """Whether ``job_dir`` holds the finished job of config hash ``chash``."""
    row = _first_row(job_dir)
    return row is not None and row.get("config_hash") == chash


def seed_folders(job_dir: Path) -> list[Path]:
    """A tuning trial's other seeds' job folders (``seeds/<seed>/``), by seed."""
    folder = job_dir / schema.SEEDS_DIR
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()),
                  key=lambda p: int(p.name))


def write_failed(out_dir: Path, cfg: DictConfig, exc: BaseException) -> None:
    """A crashed job's one row: status=failed, the reason, and the traceback beside it."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)

    def name(group: str) -> str:
        node = plain.get(group) or {}
        return str(node.get("name", "?")) if isinstance(node, dict) else "?"

    method = plain.get("method") or {}
    row = {
        "run_id": out_dir.name, "dataset": name("dataset"), "model": name("model"),
        "scenario": name("scenario"), "seed": plain.get("seed"),
        "method": component_name(str(method.get("_target_", "?.?.?"))),
        "role": "unlearned", "status": "failed",
        "reason": f"job crashed: {type(exc).__name__}: {exc}",
        "config_hash": schema.config_hash(plain),
    }
    write_job(out_dir, tidy([row]), None, {
        "config.yaml": OmegaConf.to_yaml(OmegaConf.create(plain)),
        "traceback.txt": "".join(traceback.format_exception(exc)),
    })


def gpu_for_job(job_num: int, device_count: int) -> int | None:
    """The GPU index for job ``job_num``: round robin when there is more than one GPU."""
    return job_num % device_count if device_count > 1 else None


def assign_gpu(device_spec: str, job_num: int) -> int | None:
    """With ``device: auto``, make GPU (job_num mod count) current; the config is unchanged
    (still ``auto``), so the job's config_hash and its cache keys do not depend on it."""
    if device_spec != "auto" or not torch.cuda.is_available():
        return None
    index = gpu_for_job(job_num, torch.cuda.device_count())
    if index is not None:
        torch.cuda.set_device(index)
    return index

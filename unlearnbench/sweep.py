"""What a job inside a sweep needs beyond the runner: resume, crash rows, GPU choice.

- Resume: a job whose resolved config (its ``config_hash``) already has a ``done`` folder in
  the same sweep directory is skipped, wherever that folder is (``method=glob(*)`` renumbers
  jobs when a method is added, so the folder name is not the identity of a job).
- Crash rows: an unexpected exception in one job becomes a ``status=failed`` row with the
  reason, so the sweep goes on and the summary and leaderboard show the job as failed.
- GPU choice: with ``device: auto`` and several visible GPUs, job ``n`` uses ``cuda:(n mod
  count)``, so parallel jobs on one node spread over its GPUs.
"""

from __future__ import annotations

import csv
import traceback
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from .results import DONE, tidy, write_job
from .runner import config_hash, method_name


def _job_hash(job_dir: Path) -> str | None:
    """The config_hash of a finished job folder, None if it is not finished or unreadable."""
    if not (job_dir / DONE).exists():
        return None
    try:
        with open(job_dir / "metrics.csv", newline="") as f:
            first = next(csv.DictReader(f), None)
    except OSError:
        return None
    return first.get("config_hash") if first else None


def find_done(out_dir: Path, cfg: DictConfig) -> Path | None:
    """A finished job folder of this sweep with the same resolved config, if there is one."""
    wanted = config_hash(cfg)
    if _job_hash(out_dir) == wanted:
        return out_dir
    sweep_dir = out_dir.parent
    for job_dir in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p != out_dir):
        if _job_hash(job_dir) == wanted:
            return job_dir
    return None


def write_failed(out_dir: Path, cfg: DictConfig, exc: BaseException) -> None:
    """A crashed job's one row: status=failed, the reason, and the traceback beside it."""
    row = {
        "run_id": out_dir.name, "dataset": cfg.dataset.name, "model": cfg.model.name,
        "scenario": cfg.scenario.name, "seed": int(cfg.seed), "method": method_name(cfg.method),
        "role": "unlearned", "status": "failed",
        "reason": f"job crashed: {type(exc).__name__}: {exc}", "config_hash": config_hash(cfg),
    }
    write_job(out_dir, tidy([row]), None, {
        "config.yaml": OmegaConf.to_yaml(cfg, resolve=True),
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

"""Hydra glue: check the command line, run each job, return its objective (for sweepers such as
Optuna), report user errors in one line, and remove only what a failed run created."""

from __future__ import annotations

import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from . import schema, sweep
from .errors import NotApplicable, UserError
from .preflight import Checked, JobCheck, check_benchmark_job, preflight
from .runner import objective, run
from .validation import resolved

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
INTERRUPTED = "interrupted; rerun the same command to resume"

# Set by main() from the preflight: which folders existed before this command ran.
_checked = Checked(jobs=0)


def fail(message: str, status: int = 2) -> None:
    print(f"unlearnbench: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(status)


def _remove_created(out_dir: Path, keep: set[Path]) -> None:
    """Remove a failed job's folder and the folders above it that this run created and left
    empty (never a folder that existed before; no file but the `multirun.yaml` Hydra wrote
    into a sweep folder this run created: a job writes its files only at the end and removes
    them itself when that fails)."""
    for folder in [out_dir, *out_dir.parents]:
        if folder in keep or not folder.is_dir():
            return
        entries = list(folder.iterdir())
        if [p.name for p in entries if p.is_file()] == ["multirun.yaml"] and len(entries) == 1:
            entries[0].unlink()
        elif entries:
            return
        folder.rmdir()


JobRunner = Callable[[DictConfig, Path], float]


def run_benchmark(cfg: DictConfig, out_dir: Path) -> float:
    """One benchmark job; its objective for a sweeper."""
    return objective(run(cfg, out_dir), cfg)


def _job(cfg: DictConfig, run_job: JobRunner = run_benchmark) -> float:
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    keep = {p.resolve() for p in _checked.existing}
    if in_sweep:
        done = sweep.find_done(out_dir, schema.config_hash(resolved(cfg)),
                               warn=lambda m: print(f"unlearnbench: warning: {m}",
                                                    file=sys.stderr))
        if done is not None:  # a rerun of an interrupted sweep: keep what is finished
            print(f"skipped: same config already done in {done}")
            if done != out_dir:
                _remove_created(out_dir.resolve(), keep)
            return sweep.stored_objective(done, float(cfg.tune.max_cost))
        sweep.assign_gpu(str(cfg.device), int(hydra_cfg.job.num))
    try:
        return run_job(cfg, out_dir)
    except NotApplicable as exc:
        if not in_sweep:
            _remove_created(out_dir.resolve(), keep)
            fail(str(exc))
        print(f"skipped: not applicable ({' '.join(str(exc).split())})")
        _remove_created(out_dir.resolve(), keep)
        return math.inf
    except UserError as exc:
        _remove_created(out_dir.resolve(), keep)
        fail(str(exc))
    except KeyboardInterrupt:
        _remove_created(out_dir.resolve(), keep)
        fail(INTERRUPTED, 130)
    except Exception as exc:  # in a sweep, one crashed job is a failed row, not the end
        if not in_sweep:
            _remove_created(out_dir.resolve(), keep)
            if os.environ.get("UNLEARNBENCH_DEBUG"):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} "
                 "(rerun with UNLEARNBENCH_DEBUG=1 for the traceback)", 1)
        print(f"job crashed: {type(exc).__name__}: {exc} (failed row in {out_dir})",
              file=sys.stderr)
        sweep.write_failed(out_dir, cfg, exc)
    return math.inf


def main(config_name: str = "config", run_job: JobRunner = run_benchmark,
         check: JobCheck = check_benchmark_job) -> None:
    """Console entry point: `unlearnbench [overrides]`, `unlearnbench -m [sweep overrides]`.
    Another command on the same conf/ (unlearnbench-transfer) passes its primary config, its
    job and its preflight check."""
    global _checked
    # argparse cannot split positionals around a flag: accept `-m` anywhere on the line.
    flags = [a for a in sys.argv[1:] if a in ("-m", "--multirun")]
    sys.argv[1:] = flags + [a for a in sys.argv[1:] if a not in flags]
    # Ctrl-C while Hydra sets up: one line, not a traceback.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _checked = preflight(sys.argv[1:], CONF_DIR, config_name, check) or Checked(jobs=0)
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(INTERRUPTED, 130)
    def task(cfg: DictConfig) -> float:
        return _job(cfg, run_job)

    try:
        hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(task)()
    except KeyboardInterrupt:
        fail(INTERRUPTED, 130)


if __name__ == "__main__":
    main()

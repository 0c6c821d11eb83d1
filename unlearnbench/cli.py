"""Hydra glue: check the command line, run each job, return its objective (for sweepers such as
Optuna), report user errors in one line, and remove only what a failed run created.

Three commands share it: `unlearnbench` (the benchmark job, conf/config.yaml),
`unlearnbench-privacy` (the per-example privacy protocol, conf/privacy.yaml) and
`unlearnbench-transfer` (transfer after unlearning, conf/transfer.yaml; transfer_run.py)."""

from __future__ import annotations

import math
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from . import privacy, runner, schema, sweep
from .errors import NotApplicable, UserError
from .preflight import Checked, JobCheck, check_benchmark_job, preflight
from .validation import resolved

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
INTERRUPTED = "interrupted; rerun the same command to resume"


JobRunner = Callable[[DictConfig, Path], float]  # a job run into its folder: its objective
StoredObjective = Callable[[DictConfig, Path], float]  # a finished job's, from its folder


def run_benchmark(cfg: DictConfig, out_dir: Path) -> float:
    """One benchmark job; its objective for a sweeper. A tuning trial of ``tune.seeds`` > 1
    first runs its other seeds, each a job folder under ``seeds/<seed>/`` (kept when a rerun
    finds it finished), then its own seed into ``out_dir``, whose ``done`` marker, written
    last, says the whole trial finished. Its objective is the mean over the seeds, inf when
    any seed failed or was over the cost cap (the remaining other seeds are then skipped)."""
    values = []
    for seed in runner.trial_seeds(cfg)[1:]:
        seed_cfg = runner.with_seed(cfg, seed)
        seed_dir = out_dir / schema.SEEDS_DIR / str(seed)
        # a finished seed is scored from its rows by the same rule as a fresh one
        values.append(_rows_objective(seed_dir, seed_cfg)
                      if sweep.is_done(seed_dir, schema.config_hash(resolved(seed_cfg)))
                      else runner.objective(runner.run(seed_cfg, seed_dir), seed_cfg))
        if not math.isfinite(values[-1]):
            break
    values.append(runner.objective(runner.run(cfg, out_dir), cfg))
    return schema.mean_objective(values)


def stored_benchmark(cfg: DictConfig, job_dir: Path) -> float:
    """A finished benchmark job's objective, from its files, by run_benchmark's rule: the
    task's objective of each seed's rows (the trial's other seeds too), their mean."""
    values = [_rows_objective(d, runner.with_seed(cfg, int(d.name)))
              for d in sweep.seed_folders(job_dir)]
    return schema.mean_objective([*values, _rows_objective(job_dir, cfg)])


def _rows_objective(job_dir: Path, cfg: DictConfig) -> float:
    return sweep.stored_score(job_dir / "metrics.csv", lambda rows: runner.objective(rows, cfg))


def run_privacy(cfg: DictConfig, out_dir: Path) -> float:
    """One privacy-protocol job; its objective for a sweeper."""
    return privacy.objective(privacy.run(cfg, out_dir))


def stored_privacy(cfg: DictConfig, job_dir: Path) -> float:
    """A finished privacy job's objective, from its privacy.csv, by run_privacy's rule."""
    return sweep.stored_score(job_dir / "privacy.csv", privacy.objective)


@dataclass(frozen=True)
class Command:
    """A console command: its primary config, its job (returning the objective) and the
    preflight check of each job."""

    prog: str
    config_name: str
    run_job: JobRunner
    stored_objective: StoredObjective  # a rerun's finished job scores as run_job scored it
    check: JobCheck = check_benchmark_job
    crash_rows: bool = True  # a crashed sweep job leaves a failed metrics.csv row


BENCHMARK = Command("unlearnbench", "config", run_benchmark, stored_benchmark)
PRIVACY = Command("unlearnbench-privacy", "privacy", run_privacy, stored_privacy,
                  crash_rows=False)

# Set by main() from the preflight: which folders existed before this command ran.
_checked = Checked(jobs=0)
_command = BENCHMARK


def fail(message: str, status: int = 2) -> None:
    print(f"{_command.prog}: error: {' '.join(message.split())}", file=sys.stderr)
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


def _job(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    keep = {p.resolve() for p in _checked.existing}
    if in_sweep:
        done = sweep.find_done(out_dir, schema.config_hash(resolved(cfg)),
                               warn=lambda m: print(f"{_command.prog}: warning: {m}",
                                                    file=sys.stderr))
        if done is not None:  # a rerun of an interrupted sweep: keep what is finished
            print(f"skipped: same config already done in {done}")
            if done != out_dir:
                _remove_created(out_dir.resolve(), keep)
            return _command.stored_objective(cfg, done)
        sweep.assign_gpu(str(cfg.device), int(hydra_cfg.job.num))
    try:
        return _command.run_job(cfg, out_dir)
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
        if not _command.crash_rows:  # nothing kept: a rerun of the sweep runs it again
            _remove_created(out_dir.resolve(), keep)
            print(f"job crashed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return math.inf
        print(f"job crashed: {type(exc).__name__}: {exc} (failed row in {out_dir})",
              file=sys.stderr)
        sweep.write_failed(out_dir, cfg, exc)
    return math.inf


def main(command: Command = BENCHMARK) -> None:
    """Console entry point: `unlearnbench [overrides]`, `unlearnbench -m [sweep overrides]`;
    another command on the same conf/ passes its own ``command``."""
    global _checked, _command
    _command = command
    # argparse cannot split positionals around a flag: accept `-m` anywhere on the line.
    flags = [a for a in sys.argv[1:] if a in ("-m", "--multirun")]
    sys.argv[1:] = flags + [a for a in sys.argv[1:] if a not in flags]
    # Ctrl-C while Hydra sets up: one line, not a traceback.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _checked = preflight(sys.argv[1:], CONF_DIR, command.config_name,
                             command.check) or Checked(jobs=0)
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(INTERRUPTED, 130)
    try:
        hydra.main(config_path=str(CONF_DIR), config_name=command.config_name,
                   version_base="1.3")(_job)()
    except KeyboardInterrupt:
        fail(INTERRUPTED, 130)


def privacy_main() -> None:
    """Console entry point `unlearnbench-privacy [overrides]` (also with -m): the per-example
    privacy protocol, e.g. `unlearnbench-privacy method=ft dataset=digits n_models=32`."""
    main(PRIVACY)


if __name__ == "__main__":
    main()

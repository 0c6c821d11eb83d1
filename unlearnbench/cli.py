"""Hydra glue: compose the config, check it, call the runner, report user errors in one line."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from . import sweep
from .errors import UserError
from .preflight import preflight
from .runner import run

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def fail(message: str) -> None:
    print(f"unlearnbench: error: {message}", file=sys.stderr)
    sys.exit(2)


def _remove_if_unfinished(out_dir: Path) -> None:
    """Drop what Hydra created for a job that wrote no results (its .hydra folder, its log)."""
    if not out_dir.is_dir() or (out_dir / "done").exists():
        return
    shutil.rmtree(out_dir / ".hydra", ignore_errors=True)
    for log in out_dir.glob("*.log"):
        log.unlink()
    for folder in (out_dir, out_dir.parent):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _job(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    if in_sweep:
        done = sweep.find_done(out_dir, cfg)
        if done is not None:  # a rerun of an interrupted sweep: keep what is finished
            print(f"skipped: same config already done in {done}")
            _remove_if_unfinished(out_dir)
            return
        sweep.assign_gpu(str(cfg.device), int(hydra_cfg.job.num))
    try:
        run(cfg, out_dir)
    except UserError as exc:
        _remove_if_unfinished(out_dir)
        fail(str(exc))
    except KeyboardInterrupt:
        _remove_if_unfinished(out_dir)
        raise
    except Exception as exc:  # in a sweep, one crashed job is a failed row, not the end
        if not in_sweep:
            raise
        print(f"job crashed: {type(exc).__name__}: {exc} (failed row in {out_dir})",
              file=sys.stderr)
        sweep.write_failed(out_dir, cfg, exc)


def main() -> None:
    """Console entry point: `unlearnbench [overrides]`, `unlearnbench -m [sweep overrides]`."""
    # argparse cannot split positionals around a flag: accept `-m` anywhere on the line.
    flags = [a for a in sys.argv[1:] if a in ("-m", "--multirun")]
    sys.argv[1:] = flags + [a for a in sys.argv[1:] if a not in flags]
    try:
        preflight(sys.argv[1:], CONF_DIR)
    except UserError as exc:
        fail(str(exc))
    hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_job)()


if __name__ == "__main__":
    main()

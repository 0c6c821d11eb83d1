"""Check the whole command line before Hydra runs anything: every job of a sweep is composed,
validated (every key) and checked against its data before the first one starts, so bad input
costs one line, not a traceback, and leaves nothing behind.

Sweeps are expanded with Hydra's public override parser: discrete sweeps (``a=1,2``,
``choice``, ``range``, ``glob``) job by job, Optuna's intervals (``interval(lo, hi)``,
``tag(log, ...)``, ``int(...)``) at both ends of the interval.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError, UserError
from .results import foreign_outputs
from .schema import canonical_json
from .sweep import register_resolvers
from .validation import GROUPS, check_with_data, validate

# Hydra flags after which preflight steps aside (they print, they do not run jobs).
_PASSIVE_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version",
                  "--shell-completion", "-sc", "--config-path", "-cp", "--config-name", "-cn",
                  "--config-dir", "-cd", "--package", "-p", "--resolve", "--experimental-rerun"}
_OPTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_CALLBACKS = "unlearnbench.callbacks."


@dataclass
class Checked:
    """What main() needs after the checks: how many jobs, and for a single run the folder it
    will write into and whether that folder existed before."""

    jobs: int
    run_dir: Path | None = None
    existing: set[Path] = field(default_factory=set)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return re.sub(r"\s*Set the environment variable HYDRA_FULL_ERROR=1.*$", "", text)


def _group_error(exc: MissingConfigException) -> UserError:
    match = re.search(r"Could not find '([^']+)/([^/']+)'", str(exc))
    if match and exc.options:
        group, value = match.groups()
        return ConfigError(group, value, ", ".join(sorted(exc.options)))
    return UserError(_one_line(exc))


def _unknown_key_error(exc: Exception, job: list[str], config_name: str) -> UserError:
    """`scenario.fractio=0.2` -> name the key and list the keys its parent has."""
    match = re.search(r"Could not override '([^']+)'", str(exc)) or \
        re.search(r"Key '([^']+)' is not in struct", str(exc))
    if not match:
        return UserError(_one_line(exc))
    key = match.group(1)
    parent, _, _ = key.rpartition(".")
    others = [o for o in job if not o.lstrip("+~").startswith(f"{key}=")]
    try:
        node = compose(config_name, overrides=others)
        node = OmegaConf.select(node, parent) if parent else node
        allowed = ", ".join(sorted(str(k) for k in node.keys()))
    except Exception:
        return UserError(_one_line(exc))
    value = next((o.split("=", 1)[1] for o in job if o.startswith(f"{key}=")), "")
    return ConfigError(key, value, f"existing keys {allowed}")


def _values(override: Override) -> list[str]:
    """The values a sweep override takes, as override strings (intervals: both ends)."""
    if override.is_discrete_sweep():
        return list(override.sweep_string_iterator())
    if override.is_interval_sweep():
        sweep = override.value()
        return [str(sweep.start), str(sweep.end)]
    raise UserError(f"{override.input_line}: unsupported sweep syntax")


def _jobs(overrides: list[str], multirun: bool, config_name: str = "config") -> list[list[str]]:
    """Each job's override list: the Cartesian product of the sweeps, from the command line
    and from the config's ``hydra.sweeper.params`` (the command line wins)."""
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    parsed = parser.parse_overrides(overrides)
    if not multirun:
        if any(o.is_sweep_override() for o in parsed):
            raise UserError("sweep syntax (a,b or choice/range/interval) needs -m (multirun)")
        return [overrides]
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    base = compose(config_name, overrides=fixed, return_hydra_config=True)
    params = OmegaConf.select(base, "hydra.sweeper.params") or {}
    by_key: dict[str, Override] = {}
    for o in parser.parse_overrides([f"{k}={v}" for k, v in params.items()]) + parsed:
        by_key[o.get_key_element()] = o
    axes = [[o.input_line] if not o.is_sweep_override()
            else [f"{o.get_key_element()}={v}" for v in _values(o)] for o in by_key.values()]
    return [list(job) for job in itertools.product(*axes)]


def _check_choices(cfg: Any) -> None:
    """Group options are names, not paths (`method=../../x` would read a file outside conf/);
    Hydra's callbacks are ours."""
    for group, choice in (cfg.hydra.runtime.choices or {}).items():
        if choice is not None and not _OPTION.match(str(choice)):
            raise ConfigError(str(group), choice, "an option name of conf/" + str(group))
    for name, node in (cfg.hydra.callbacks or {}).items():
        target = str(node.get("_target_", ""))
        if not target.startswith(_CALLBACKS):
            raise ConfigError(f"hydra.callbacks.{name}._target_", target,
                              f"a callback under {_CALLBACKS.rstrip('.')}")


def _check_folder(key: str, path: Path, must_write: bool = True) -> None:
    """The folder, or the nearest existing folder above it, is a writable directory."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(key, str(path), f"a folder ({probe} is a file)")
    if must_write and not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(key, str(path), f"a writable folder ({probe} is read-only)")


def _check_paths(cfg: Any) -> None:
    _check_folder("results_dir", Path(cfg.results_dir))
    cache = Path(cfg.cache_dir)
    # A read-only cache that already holds its entries may still be read.
    _check_folder("cache_dir", cache, must_write=not cache.is_dir())
    root = Path(cfg.data_root)
    if root.exists() and not root.is_dir():
        raise ConfigError("data_root", str(root), f"a folder ({root} is a file)")


class _DataCache:
    """Each dataset loaded once for the data checks of all jobs."""

    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}

    def get(self, plan: Any) -> Any:
        from .data import load_data

        key = canonical_json([plan.cfg["dataset"], plan.cfg["data_root"]])
        if key not in self.loaded:
            self.loaded[key] = load_data(plan.cfg["dataset"], plan.cfg["data_root"])
        return self.loaded[key]


def _check_job(job: list[str], data: _DataCache, config_name: str) -> Any:
    try:
        cfg = compose(config_name, overrides=job, return_hydra_config=True)
    except MissingConfigException as exc:
        raise _group_error(exc) from None
    except HydraException as exc:
        raise _unknown_key_error(exc, job, config_name) from None
    _check_choices(cfg)
    plan = validate(cfg)
    _check_paths(cfg)
    env = plan.task.environment(plan.cfg, torch.device("cpu"), lambda m: None, data.get(plan))
    check_with_data(plan, env)
    return cfg


def preflight(argv: list[str], conf_dir: Path, config_name: str = "config") -> Checked | None:
    """Compose (the primary config ``config_name``), validate and data-check every job the
    command line describes; UserError if one is bad. None when Hydra is only asked to print
    (--help, --cfg, ...)."""
    if any(a.split("=")[0] in _PASSIVE_FLAGS for a in argv):
        return None
    register_resolvers()
    multirun = any(a in ("-m", "--multirun") for a in argv)
    overrides = [a for a in argv if not a.startswith("-")]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            jobs = _jobs(overrides, multirun, config_name)
            data = _DataCache()
            last = None
            for job in jobs:
                last = _check_job(job, data, config_name)
            checked = Checked(jobs=len(jobs))
            if not multirun and last is not None:
                HydraConfig.instance().set_config(last)  # resolves ${hydra:...} in run.dir
                run_dir = Path(str(last.hydra.run.dir))
                foreign = foreign_outputs(run_dir)
                if foreign:
                    raise ConfigError("hydra.run.dir", str(run_dir),
                                      "a new or empty folder (it holds "
                                      + ", ".join(foreign) + " that this run would overwrite)")
                checked.run_dir = run_dir
                checked.existing = {p for p in [run_dir, *run_dir.parents] if p.exists()}
            return checked
    except UserError:
        raise
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as exc:
        raise UserError(_one_line(exc)) from None
    finally:
        GlobalHydra.instance().clear()


__all__ = ["GROUPS", "Checked", "preflight"]

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
from collections.abc import Callable
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

from .errors import ConfigError, NotApplicable, UserError
from .results import check_not_another_job, foreign_outputs
from .schema import canonical_json, config_hash
from .sweep import HASH_RESOLVER, register_resolvers
from .validation import GROUPS, check_with_data, resolved, validate

# Hydra flags after which preflight steps aside (they print, they do not run jobs).
_PASSIVE_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version",
                  "--shell-completion", "-sc"}
# Flags that would run jobs from configs other than conf/ (unchecked here) or from a pickle.
_REFUSED_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                  "--experimental-rerun"}
_RUN_FLAGS = {"-m", "--multirun", "-r", "--run"}
_OPTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_CALLBACKS = "unlearnbench.callbacks."
SWEEP_OUTPUTS = ("summary.csv", "summary.md")  # what a sweep writes in its folder, but Hydra's


@dataclass
class Checked:
    """What main() needs after the checks: how many jobs, the folder the run or the sweep
    writes into, and which of it and its parents existed before (never removed)."""

    jobs: int
    run_dir: Path | None = None
    existing: set[Path] = field(default_factory=set)
    not_applicable: int = 0  # sweep jobs whose method does not apply (skipped when run)


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


_OVERRIDE_FORM = ("key=value, e.g. train.lr=0.1 or method=ga (+key=value adds a key, "
                  "~key deletes one; https://hydra.cc/docs/advanced/override_grammar/basic)")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*([./][A-Za-z_][A-Za-z0-9_-]*)*$")


def _group_options(group: str) -> list[str] | None:
    """The options of a config group (conf/<group>/*.yaml and Hydra's own), None when
    ``group`` is no group but a key."""
    repository = GlobalHydra.instance().config_loader().repository  # type: ignore[attr-defined]
    if not repository.group_exists(group):
        return None
    return sorted(repository.get_group_options(group))


# The defaults list's optional group (conf/config.yaml): its option is derived from the
# setting and may not exist; a name given on the command line is still checked.
OPTIONAL_GROUP = "tuned"


def _check_choice(group: str, value: Any, options: list[str]) -> None:
    """A group option is one of the group's names: never a path (`method=../../x` would read a
    file outside conf/ and name the job folder after it)."""
    if value is None or (isinstance(value, str) and _OPTION.match(value)
                         and value in options):
        return
    raise ConfigError(group, value, ", ".join(options))


def _check_overrides(overrides: list[str], multirun: bool) -> list[Override]:
    """Each override on its own, before anything is composed: its syntax, its key, a key given
    once, sweep syntax only with -m, and a group's option among the group's names."""
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    parsed, seen = [], {}
    for text in overrides:
        try:
            [override] = parser.parse_overrides([text])
        except HydraException:
            raise UserError(f"{text} is not an override; allowed: {_OVERRIDE_FORM}") from None
        key = override.key_or_group
        if not _KEY.match(key):
            raise UserError(f"{text} is not an override; allowed: {_OVERRIDE_FORM}")
        if key in seen:
            raise UserError(f"{key} is given twice ({seen[key]}, {text}); allowed: each key "
                            "once on the command line")
        seen[key] = text
        if override.is_sweep_override() and not multirun:
            raise ConfigError(key, text.partition("=")[2],
                              "one value (a sweep such as a,b, choice, range or interval "
                              "needs -m)")
        options = _group_options(key)
        if options is not None:
            values = _values(override) if override.is_sweep_override() else [override.value()]
            for value in values:
                _check_choice(key, value, options)
        parsed.append(override)
    return parsed


def _jobs(overrides: list[str], multirun: bool, config_name: str = "config") -> list[list[str]]:
    """Each job's override list: the Cartesian product of the sweeps, from the command line
    and from the config's ``hydra.sweeper.params`` (the command line wins)."""
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    parsed = parser.parse_overrides(overrides)
    if not multirun:
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


def _check_hydra(cfg: Any) -> None:
    """Hydra's own settings: group options are names (also those chosen inside a config),
    callbacks are ours, and nothing is written into the run folder before the job ends (no
    `.hydra/`, no log file), so a failed job leaves nothing there."""
    for group, choice in (cfg.hydra.runtime.choices or {}).items():
        if group == OPTIONAL_GROUP and isinstance(choice, str) and _OPTION.match(choice):
            continue  # `optional tuned: <setting>`: a setting without a tuned file has none
        _check_choice(str(group), choice, _group_options(str(group)) or [])
    for name, node in (cfg.hydra.callbacks or {}).items():
        target = str(node.get("_target_", ""))
        if not target.startswith(_CALLBACKS):
            raise ConfigError(f"hydra.callbacks.{name}._target_", target,
                              f"a callback under {_CALLBACKS.rstrip('.')}")
    if cfg.hydra.output_subdir is not None:
        raise ConfigError("hydra.output_subdir", cfg.hydra.output_subdir,
                          "null (each job writes its resolved config.yaml itself, when it "
                          "succeeds)")
    for group in ("job_logging", "hydra_logging"):
        handlers = OmegaConf.select(cfg, f"hydra.{group}.handlers") or {}
        if any("filename" in (h or {}) for h in handlers.values()):
            raise ConfigError(f"hydra/{group}", cfg.hydra.runtime.choices.get(f"hydra/{group}"),
                              "stdout, disabled or none (no log file: a failed job leaves "
                              "its folder empty)")
    subdir = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"]  # type: ignore
    if f"${{{HASH_RESOLVER}:}}" not in str(subdir):
        raise ConfigError("hydra.sweep.subdir", subdir,
                          f"a folder name that holds ${{{HASH_RESOLVER}:}} (the job's config "
                          "hash), so no job of a sweep ever reuses another job's folder")


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


def check_paths(cfg: Any) -> None:
    _check_folder("results_dir", Path(cfg.results_dir))
    cache = Path(cfg.cache_dir)
    # A read-only cache that already holds its entries may still be read.
    _check_folder("cache_dir", cache, must_write=not cache.is_dir())
    root = Path(cfg.data_root)
    if root.exists() and not root.is_dir():
        raise ConfigError("data_root", str(root), f"a folder ({root} is a file)")


class DataCache:
    """Each dataset loaded once for the data checks of all jobs."""

    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}

    def get(self, plan: Any) -> Any:
        return self.load(plan.cfg["dataset"], plan.cfg["data_root"], plan.allow)

    def load(self, dataset: Any, data_root: str, allow: tuple[str, ...] = ()) -> Any:
        from .data import load_data

        key = canonical_json([dataset, data_root, list(allow)])
        if key not in self.loaded:
            self.loaded[key] = load_data(dataset, data_root, allow)
        return self.loaded[key]


def check_benchmark_job(cfg: Any, data: DataCache) -> None:
    """Every key of one composed job, then its counts against the loaded data."""
    plan = validate(cfg)
    check_paths(cfg)
    check_plan_with_data(plan, data)


def check_plan_with_data(plan: Any, data: DataCache) -> None:
    env = plan.task.environment(plan.cfg, torch.device("cpu"), lambda m: None, data.get(plan))
    check_with_data(plan, env)


JobCheck = Callable[[Any, "DataCache"], None]


def _check_job(job: list[str], data: DataCache, config_name: str, check: JobCheck) -> Any:
    try:
        cfg = compose(config_name, overrides=job, return_hydra_config=True)
    except MissingConfigException as exc:
        raise _group_error(exc) from None
    except HydraException as exc:
        raise _unknown_key_error(exc, job, config_name) from None
    _check_hydra(cfg)
    check(cfg, data)
    return cfg


def _run_dir(cfg: Any) -> Path:
    """A single run's folder: new, empty, or holding a finished job of this same config;
    never a user's files that the job would overwrite."""
    run_dir = Path(str(cfg.hydra.run.dir))
    _check_folder("hydra.run.dir", run_dir)
    foreign = foreign_outputs(run_dir)
    if foreign:
        raise ConfigError("hydra.run.dir", str(run_dir), "a new or empty folder (it holds "
                          + ", ".join(foreign) + " that this run would overwrite)")
    check_not_another_job(run_dir, config_hash(resolved(cfg)), "hydra.run.dir")
    return run_dir


def _sweep_dir(cfg: Any) -> Path:
    """A sweep's folder: new, or a sweep folder (Hydra's multirun.yaml in it); never a folder
    holding a user's summary files, which the sweep would overwrite."""
    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    _check_folder("hydra.sweep.dir", sweep_dir)
    ours = (sweep_dir / "multirun.yaml").is_file()
    foreign = [n for n in SWEEP_OUTPUTS if (sweep_dir / n).exists()] if not ours else []
    if foreign:
        raise ConfigError("hydra.sweep.dir", str(sweep_dir), "a new folder or an earlier "
                          f"sweep's (it holds {', '.join(foreign)} that this sweep would "
                          "overwrite)")
    return sweep_dir


def preflight(argv: list[str], conf_dir: Path, config_name: str = "config",
              check: JobCheck = check_benchmark_job) -> Checked | None:
    """Compose, validate and data-check every job the command line describes; UserError if
    one is bad. None when Hydra is only asked to print (--help, --cfg, ...). ``config_name``
    and ``check``: another command's primary config and job check (unlearnbench-transfer)."""
    flags = [a.split("=")[0] for a in argv if a.startswith("-")]
    if any(f in _PASSIVE_FLAGS for f in flags):
        return None
    for flag in flags:
        if flag in _REFUSED_FLAGS:
            raise UserError(f"{flag} is not supported; allowed: the configs of conf/ with "
                            "overrides key=value (a named experiment: +experiment=NAME)")
        if flag not in _RUN_FLAGS:
            raise UserError(f"{flag} is not an option; allowed: -m (a sweep), --help, --cfg "
                            "job, and overrides key=value")
    register_resolvers()
    multirun = any(a in ("-m", "--multirun") for a in argv)
    overrides = [a for a in argv if a not in _RUN_FLAGS]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            _check_overrides(overrides, multirun)
            jobs = _jobs(overrides, multirun, config_name)
            data = DataCache()
            last, skipped = None, []
            for job in jobs:
                try:
                    last = _check_job(job, data, config_name, check)
                except NotApplicable as exc:
                    # `method=glob(*)` crosses every method with every scenario: a class-wise
                    # method on a sample scenario is no job, not bad input (unless none is left)
                    if not multirun:
                        raise
                    skipped.append(exc)
            if skipped and len(skipped) == len(jobs):
                raise skipped[0]
            if skipped:
                print(f"unlearnbench: {len(skipped)} of {len(jobs)} sweep job(s) not applicable, "
                      f"skipped (e.g. {skipped[0]})")
            assert last is not None
            HydraConfig.instance().set_config(last)  # resolves ${hydra:...} in the folders
            folder = _sweep_dir(last) if multirun else _run_dir(last)
            return Checked(jobs=len(jobs), run_dir=folder,
                           existing={p for p in [folder, *folder.parents] if p.exists()},
                           not_applicable=len(skipped))
    except UserError:
        raise
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as exc:
        raise UserError(_one_line(exc)) from None
    finally:
        GlobalHydra.instance().clear()


__all__ = ["GROUPS", "Checked", "DataCache", "check_benchmark_job", "check_paths", "preflight"]

"""Check the command line before Hydra runs anything, so bad input costs one line, not a
traceback, and leaves nothing in the results directory."""

from __future__ import annotations

import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError, UserError
from .runner import validate_config

# Hydra flags after which preflight steps aside (they print, they do not run jobs).
_PASSIVE_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version",
                  "--shell-completion", "-sc", "--config-path", "-cp", "--config-name", "-cn",
                  "--config-dir", "-cd", "--package", "-p", "--resolve", "--experimental-rerun"}


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return re.sub(r"\s*Set the environment variable HYDRA_FULL_ERROR=1.*$", "", text)


def _group_error(exc: MissingConfigException, overrides: list[str]) -> UserError:
    match = re.search(r"Could not find '([^']+)/([^/']+)'", str(exc))
    if match and exc.options:
        group, value = match.groups()
        return ConfigError(group, value, ", ".join(sorted(exc.options)))
    return UserError(_one_line(exc))


def _unknown_key_error(exc: Exception, job: list[str]) -> UserError:
    """`scenario.fractio=0.2` -> name the key and list the keys its parent has."""
    match = re.search(r"Could not override '([^']+)'", str(exc))
    if not match:
        return UserError(_one_line(exc))
    key = match.group(1)
    parent, _, _ = key.rpartition(".")
    others = [o for o in job if not o.startswith(f"{key}=")]
    try:
        node = compose("config", overrides=others)
        node = OmegaConf.select(node, parent) if parent else node
        allowed = ", ".join(sorted(str(k) for k in node.keys()))
    except Exception:
        return UserError(_one_line(exc))
    value = next((o.split("=", 1)[1] for o in job if o.startswith(f"{key}=")), "")
    return ConfigError(key, value, f"existing keys {allowed} (prefix + to add a new key)")


def _jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """Each job's override list, expanded the way Hydra's basic sweeper does."""
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    parsed = parser.parse_overrides(overrides)
    if not multirun:
        return [overrides]
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    base = compose("config", overrides=fixed, return_hydra_config=True)
    params = OmegaConf.select(base, "hydra.sweeper.params") or {}
    from_config = [f"{k}={v}" for k, v in params.items()]
    sweep = parser.parse_overrides(from_config + overrides)
    batches = BasicSweeper.split_arguments(sweep, max_batch_size=None)
    return [job for batch in batches for job in batch]


def preflight(argv: list[str], conf_dir: Path) -> None:
    """Compose and validate every job the command line describes; raise UserError if bad."""
    if any(a.split("=")[0] in _PASSIVE_FLAGS for a in argv):
        return
    multirun = any(a in ("-m", "--multirun") for a in argv)
    overrides = [a for a in argv if not a.startswith("-")]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            for job in _jobs(overrides, multirun):
                try:
                    validate_config(compose("config", overrides=job))
                except MissingConfigException as exc:
                    raise _group_error(exc, job) from None
                except HydraException as exc:
                    raise _unknown_key_error(exc, job) from None
    except UserError:
        raise
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise UserError(_one_line(exc)) from None
    finally:
        GlobalHydra.instance().clear()

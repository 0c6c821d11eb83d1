"""Resolve a config's ``_target_`` to a callable, only from an allow-list.

Every component is chosen by ``_target_`` (datasets, models, scenarios, producers, methods,
metrics, tasks). A config is user input: importing whatever module it names would run that
module's code, so a target must lie in the package that serves its group (e.g. a method in
``unlearnbench.methods``), or under a prefix the user lists in the top-level ``allow_targets``
key (their own plug-ins, a deliberate act).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from .errors import ConfigError

# group -> the module prefixes its targets may come from
ALLOWED: dict[str, tuple[str, ...]] = {
    "dataset": ("unlearnbench.data.",),
    "model": ("unlearnbench.models.",),
    "scenario": ("unlearnbench.scenarios.",),
    "sparsity": ("unlearnbench.producers.",),
    "producer": ("unlearnbench.producers.",),
    "method": ("unlearnbench.methods.", "unlearnbench.generative.methods."),
    "generator": ("unlearnbench.generative.zoo.",),  # model=mae|vqgan|ddpm (task=inpainting)
    "metric": ("unlearnbench.metrics.",),
    "task": ("unlearnbench.tasks.",),
}
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def resolve(target: Any, group: str, key: str,
            extra_prefixes: Iterable[str] = ()) -> Callable[..., Any]:
    """The callable named by ``target``; ConfigError naming ``key`` when it is not allowed,
    not importable or not callable."""
    prefixes = (*ALLOWED[group], *extra_prefixes)
    allowed = f"a callable under {' or '.join(p.rstrip('.') for p in prefixes)}"
    if not isinstance(target, str) or not _DOTTED.match(target):
        raise ConfigError(key, target, allowed)
    if not any(target.startswith(p) for p in prefixes):
        raise ConfigError(key, target, allowed + " (other packages: list their prefix in "
                          "the top-level key allow_targets)")
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(key, target, allowed + f" (no module {module_name})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(key, target, allowed + f" ({module_name} has no callable {attr})")
    return fn


def component_name(target: str) -> str:
    """`unlearnbench.methods.ft.unlearn` -> `ft`: a method is named by its module."""
    return str(target).rsplit(".", 2)[-2]

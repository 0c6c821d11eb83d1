"""A finished job's resolved config.yaml, read as plain data (torch-free), and what tells
jobs apart: shared by the leaderboard and its privacy section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class BadJob(Exception):
    """A finished job whose files cannot be used; the message starts with the file."""


def read_yaml(path: Path) -> Any:
    """Plain YAML: no tags, and no interpolation (`${oc.env:HOME}` stays that text)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        out: dict[str, str] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: str(node)}


def job_config(job_dir: Path) -> dict[str, str]:
    """The job's resolved config, flattened to dotted keys (empty if it was not saved)."""
    path = job_dir / "config.yaml"
    if not path.exists():
        return {}
    try:
        node = read_yaml(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BadJob(f"{path}: unreadable YAML ({type(exc).__name__}: "
                     f"{' '.join(str(exc).split())})") from None
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise BadJob(f"{path}: not a mapping of config keys")
    return flatten(node)


def differing(configs: list[dict[str, str]], keep: Any) -> list[str]:
    """Keys (selected by ``keep``) whose value is not the same in every config."""
    keys = sorted({k for c in configs for k in c if keep(k)})
    return [k for k in keys if len({c.get(k) for c in configs}) > 1]


def label(cfg: dict[str, str], keys: list[str]) -> str:
    return ", ".join(f"{k}={cfg.get(k)}" for k in keys)


def method_variant(k: str) -> bool:
    """A method hyperparameter key (not a `_target_`-like descriptor, not the runner's keys,
    which include where tuned values came from)."""
    return k.startswith("method.") and not k.endswith("_") and not k.startswith("method.runner.")

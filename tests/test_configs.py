"""Every file under conf/ composes, passes the validation layer, and what it configures can
be built."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unlearnbench.data import load_data
from unlearnbench.errors import DatasetMissingError
from unlearnbench.models import build_model
from unlearnbench.params import keyword_parameters, unchecked_parameters
from unlearnbench.registry import resolve
from unlearnbench.scenarios import make_split
from unlearnbench.tasks.inpainting import build_generator
from unlearnbench.validation import validate

from .conftest import CONF_DIR, make_cfg, task_overrides

OPTIONS = sorted(
    (p.parent.relative_to(CONF_DIR).as_posix(), p.stem)
    for p in CONF_DIR.rglob("*.yaml") if p.parent != CONF_DIR
)

# conf/hydra/launcher/<option>.yaml -> (module, plugin, extra) it needs.
LAUNCHER_PLUGINS = {
    "local": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher", "joblib"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "slurm"),
}


def test_every_group_is_covered() -> None:
    groups = {g for g, _ in OPTIONS}
    assert {"dataset", "model", "method", "scenario", "train", "eval", "task"} <= groups


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group: str, option: str, tmp_path: Path) -> None:
    if group.startswith("hydra/"):
        plugin = LAUNCHER_PLUGINS.get(option)
        if plugin:
            pytest.importorskip(plugin[0], reason=f"{plugin[1]} not installed "
                                f"(pip install -e '.[{plugin[2]}]'; `.[dev]` includes it)")
        cfg = make_cfg(f"{group}={option}", results_dir=tmp_path, return_hydra_config=True)
        assert cfg.hydra.launcher._target_
        return
    if group == "tuned":  # picked up by the defaults list for its own setting only
        _check_tuned(option, tmp_path)
        return
    prefix = "+" if group in ("experiment", "tune") else ""  # groups not in the defaults
    # the privacy group belongs to unlearnbench-privacy's primary config (conf/privacy.yaml)
    primary = "privacy" if group == "privacy" else "config"
    extra = task_overrides(group, option) if group in ("model", "method", "train") else ()
    cfg = make_cfg(f"{prefix}{group}={option}", *extra, results_dir=tmp_path,
                   config_name=primary)
    plan = validate(cfg)
    if group == "privacy":
        assert plan.privacy is not None and plan.ensemble is not None
    elif group == "method":
        assert callable(plan.method_fn) and plan.method == option
    elif group == "dataset":
        try:
            data = load_data(plan.cfg["dataset"], tmp_path / "data")
        except DatasetMissingError as exc:  # offline datasets must say where files go
            assert str(tmp_path / "data") in str(exc) and "download" in str(exc)
        else:
            assert data.num_classes == cfg.dataset.num_classes
    elif group == "model" and extra:  # a generator (task=inpainting)
        model = build_generator(plan.cfg["model"])
        assert sum(p.numel() for p in model.parameters()) > 0
    elif group == "model":
        model = build_model(plan.cfg["model"], (1, 8, 8), 10)
        assert sum(p.numel() for p in model.parameters()) > 0
    elif group == "scenario":
        split = make_split(plan.cfg["scenario"], torch.arange(200) % 10, 10, seed=0)
        assert len(split.forget) > 0 and len(split.retain) > 0


def _check_tuned(option: str, tmp_path: Path) -> None:
    """A tuned file names its setting in its header; composed for that setting, the job uses
    the selected values and passes the validation layer."""
    import re

    import yaml

    path = CONF_DIR / "tuned" / f"{option}.yaml"
    setting = re.search(r"for (method=\S+ dataset=\S+ model=\S+ scenario=\S+):",
                        path.read_text())
    assert setting, f"{path.name}: no 'for method=... dataset=... model=... scenario=...' line"
    overrides = setting.group(1).split()
    assert "_".join(o.split("=")[1] for o in overrides[1:] + overrides[:1]) == option
    plan = validate(make_cfg(*overrides, results_dir=tmp_path))
    selected = yaml.safe_load(path.read_text())
    for key, value in selected.items():
        if key != "runner":
            assert plan.cfg["method"][key] == value, key


def _components() -> list[tuple[str, str]]:
    """Every `_target_` named under conf/ (methods, models, datasets, producers, metrics)."""
    import yaml

    found = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("_target_"), str) and node["_target_"].startswith(
                    "unlearnbench."):
                found.add(node["_target_"])
            for v in node.values():
                walk(v)

    for path in CONF_DIR.rglob("*.yaml"):
        walk(yaml.safe_load(path.read_text()))
    def package(target: str) -> str:
        if target.startswith("unlearnbench.generative."):  # generators and their methods
            return "generative.zoo" if ".zoo." in target else "generative.methods"
        return target.split(".")[1]

    return sorted((package(t), t) for t in found)


@pytest.mark.parametrize(("package", "target"), _components(), ids=lambda v: str(v))
def test_every_number_parameter_declares_its_range(package: str, target: str) -> None:
    """One checker serves every component: a number without a Range would go unchecked."""
    group = {"data": "dataset", "models": "model", "scenarios": "scenario",
             "producers": "producer", "methods": "method", "metrics": "metric",
             "tasks": "task", "callbacks": None, "generative.zoo": "generator",
             "generative.methods": "method"}[package]
    if group is None:
        return
    fn = resolve(target, group, target)
    assert not unchecked_parameters(fn), f"{target}: parameters without a Range"
    assert keyword_parameters(fn) is not None


TUNED = sorted(p.stem for p in (CONF_DIR / "tune").glob("*.yaml"))


@pytest.mark.parametrize("method", TUNED)
def test_search_space_lies_inside_the_methods_typed_ranges(method: str) -> None:
    """conf/tune/<method>.yaml: every key a hyperparameter of the method, every interval end
    and every choice a value its annotation admits."""
    import typing

    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep

    from unlearnbench.params import check_value

    space = yaml.safe_load((CONF_DIR / "tune" / f"{method}.yaml").read_text())
    params = space["hydra"]["sweeper"]["params"]
    target = yaml.safe_load((CONF_DIR / "method" / f"{method}.yaml").read_text())["_target_"]
    fn = resolve(target, "method", "method._target_")
    hints = typing.get_type_hints(fn, include_extras=True)
    parser = OverridesParser.create()
    for key, value in params.items():
        name = key.removeprefix("method.")
        assert key.startswith("method.") and name in keyword_parameters(fn), key
        sweep = parser.parse_overrides([f"{key}={value}"])[0].value()
        if isinstance(sweep, IntervalSweep):
            values = [sweep.start, sweep.end]
        else:
            assert isinstance(sweep, ChoiceSweep), (key, value)
            values = list(sweep.list)
        for v in values:
            check_value(key, v, hints[name])

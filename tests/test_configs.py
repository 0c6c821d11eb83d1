"""Every file under conf/ composes, and what it configures can be built."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from unlearnbench.data import load_data
from unlearnbench.errors import DatasetMissingError
from unlearnbench.models import build_model
from unlearnbench.runner import load_method, validate_config
from unlearnbench.scenarios import validate_scenario
from unlearnbench.training import Recipe

from .conftest import CONF_DIR, make_cfg

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
    assert {"dataset", "model", "method", "scenario", "train", "eval"} <= groups


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
    prefix = "+" if group == "experiment" else ""
    cfg = make_cfg(f"{prefix}{group}={option}", results_dir=tmp_path)
    validate_config(cfg)
    if group == "method":
        assert callable(load_method(cfg.method))
        assert callable(instantiate(cfg.method))
    elif group == "dataset":
        try:
            data = load_data(cfg.dataset, tmp_path / "data")
        except DatasetMissingError as exc:  # offline datasets must say where files go
            assert str(tmp_path / "data") in str(exc) and "download" in str(exc)
        else:
            assert data.num_classes == cfg.dataset.num_classes
    elif group == "model":
        model = build_model(cfg.model, (1, 8, 8), 10)
        assert sum(p.numel() for p in model.parameters()) > 0
    elif group == "scenario":
        validate_scenario(cfg.scenario, 10)
    elif group == "train":
        assert Recipe.from_cfg(cfg.train).epochs >= 1

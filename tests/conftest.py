"""Shared helpers: compose the real configs (Hydra compose API) with a private results dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from unlearnbench.sweep import register_resolvers

register_resolvers()  # the job-folder name resolver of conf/config.yaml

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def make_cfg(*overrides: str, results_dir: Path, return_hydra_config: bool = False,
             config_name: str = "config") -> DictConfig:
    """``config_name="privacy"``: the config of unlearnbench-privacy."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=[f"results_dir={results_dir}", "progress=false",
                                               "device=cpu", *overrides],
                       return_hydra_config=return_hydra_config)


# A tiny synthetic job: trains in well under a second.
SYNTH = ("dataset=synthetic", "train.epochs=3")


@pytest.fixture(scope="session")
def shared_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One results dir (and so one model cache) shared by the tests that may reuse models."""
    return tmp_path_factory.mktemp("results")


needs_fashion = pytest.mark.skipif(not FASHION_DIR.is_dir(),
                                   reason="Debian package dataset-fashion-mnist not installed")

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


# A tiny inpainting job (task=inpainting): digits upsampled to 32x32, a one-block MAE trained
# for one epoch, a one-epoch judge, a few forget images; trains in seconds.
TINY_INPAINTING = ("task=inpainting", "dataset=digits", "model.dim=32", "model.depth=1",
                   "model.decoder_dim=32", "model.decoder_depth=1", "train.epochs=[1]",
                   "task.eval_images=60", "task.judge.epochs=1")
TINY_UNLEARNING = ("method.max_forget=64", "method.epochs=2")  # a generative method's keys


def task_overrides(group: str, option: str) -> tuple[str, ...]:
    """What an option of conf/<group> needs to compose and validate: the options of
    task=inpainting (generative models and methods, the generator recipe) need that task."""
    import yaml

    node = yaml.safe_load((CONF_DIR / group / f"{option}.yaml").read_text()) or {}
    runner = node.get("runner") or {} if isinstance(node, dict) else {}
    generative = ("inpainting" in (runner.get("tasks") or [])
                  or str(node.get("_target_", "")).startswith("unlearnbench.generative.")
                  or (group == "train" and node.get("name") == "generative"))
    return ("task=inpainting",) if generative else ()

"""Each method (every conf/method/*.yaml) on synthetic data: runs, leaves its input alone,
keeps the state-dict keys."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from rich.console import Console

from unlearnbench.methods.base import MethodOutput
from unlearnbench.methods.rl import random_other_labels
from unlearnbench.runner import prepare, run_method

from .conftest import CONF_DIR, SYNTH, make_cfg, task_overrides

# The classification methods (the generative ones have tests/test_inpainting_task.py).
METHODS = sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml")
                 if not task_overrides("method", p.stem))


@pytest.mark.parametrize("method", METHODS)
def test_method_runs_and_leaves_input_untouched(method: str, shared_results: Path) -> None:
    cfg = make_cfg(*SYNTH, f"method={method}", results_dir=shared_results)
    original = prepare(cfg, Console(quiet=True)).refs.get("original").model
    before = copy.deepcopy(original.state_dict())
    job, result = run_method(cfg, Console(quiet=True))
    assert result.get("status", "ok") == "ok", result.get("reason")
    after = job.refs.get("original").model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the input model was changed"
    model = result["model"]
    # A training variant may replace the architecture (SISA's ensemble): keys as its original.
    reference = (job.refs.get("variant") if job.plan.variant is not None
                 else job.refs.get("original")).model
    assert set(model.state_dict()) == set(reference.state_dict())
    assert result["RTE_s"] >= 0


def test_random_other_labels_never_keep_the_true_label() -> None:
    labels = torch.arange(10).repeat(50)
    new = random_other_labels(labels, 10, seed=0)
    assert (new != labels).all() and new.min() >= 0 and new.max() <= 9
    assert len(new.unique()) == 10


def test_method_output_wraps_extras() -> None:
    out = MethodOutput(torch.nn.Linear(2, 2), extras={"x": 1.0})
    assert out.rte_s is None and out.extras == {"x": 1.0}

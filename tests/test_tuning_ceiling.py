"""scripts/tuning_ceiling.py: its per-method summary on hand-made rows, and that it reads each
method's search space from conf/tune/."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ceiling():
    spec = importlib.util.spec_from_file_location("tuning_ceiling",
                                                  ROOT / "scripts" / "tuning_ceiling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_separates_the_bar_from_the_cost_cap(ceiling) -> None:
    rows = pd.DataFrame([
        # method a: the selected setting misses; one setting meets the bar, but over the cap
        {"method": "a", "selected": True, "test_UA": 40.0, "test_avg_gap": 30.0,
         "max_cost_ratio": 0.1},
        {"method": "a", "selected": False, "test_UA": 99.0, "test_avg_gap": 1.5,
         "max_cost_ratio": 1.3},
        {"method": "a", "selected": False, "test_UA": 89.9, "test_avg_gap": 4.0,  # UA < 90
         "max_cost_ratio": 0.2},
        # method b: nothing selected (no feasible trial); one setting meets both
        {"method": "b", "selected": False, "test_UA": 95.0, "test_avg_gap": 5.0,
         "max_cost_ratio": 0.25},
        {"method": "b", "selected": False, "test_UA": 20.0, "test_avg_gap": math.inf,
         "max_cost_ratio": 0.5},
    ])
    table = ceiling.summary(rows, max_cost=0.25).set_index("method")
    a, b = table.loc["a"], table.loc["b"]
    assert (a.settings, a.selected_test_avg_gap, a.best_test_avg_gap) == (3, 30.0, 1.5)
    assert (a.its_UA, a.its_cost_ratio, a.best_within_cap) == (99.0, 1.3, 4.0)
    assert (a.meet_bar, a.meet_bar_within_cap) == (1, 0)
    assert math.isnan(b.selected_test_avg_gap) and b.best_test_avg_gap == 5.0
    assert (b.meet_bar, b.meet_bar_within_cap) == (1, 1)  # the bar and the cap are inclusive


def test_searched_keys_are_the_search_space(ceiling) -> None:
    assert ceiling.searched_keys("ga") == ["epochs", "lr"]
    assert "mode" in ceiling.searched_keys("unsir")


@pytest.mark.parametrize(("argv", "key"), [
    (["--methods", "nope"], "--methods"), (["--methods", "../conf/method/ga"], "--methods"),
    (["--methods", "ga", "--seeds", "0"], "--seeds"),
    (["--methods", "ga", "--seeds", "abc"], "--seeds"),
    (["--methods", "ga", "--trials", "-1"], "--trials"),
    (["--methods", "ga", "--max-cost", "nan"], "--max-cost"),
    (["--methods", "ga", "--max-cost", "0"], "--max-cost"),
    (["--methods", "gkt", "--scenario", "random"], "--methods"),  # no such study
    (["--methods", "ga", "--dataset", "cifar10"], "--dataset"),
])
def test_bad_arguments_exit_2_naming_the_key_and_write_nothing(
        ceiling, argv, key, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["tuning_ceiling.py", *argv, "--out", str(out)])
    with pytest.raises(SystemExit) as stop:
        ceiling.main()
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("tuning_ceiling.py: error:") and key in last, last
    assert not out.exists()

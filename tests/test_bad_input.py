"""The bad-input corpus (tests/bad_input_corpus.py) through the console command.

Each case: exit status 2, exactly one line on stderr, no traceback, the line names the bad
key and the allowed values, and nothing under the case's folder changes (no results, no new
folder, the user's files in the working directory untouched).

The commands run through the real entry point in forked processes (tests/forked_cli.py: one
import of the package, then a fresh process per command), two at a time; a few run through
`python -m unlearnbench.cli` as well, to show the two agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from unlearnbench import runner
from unlearnbench.errors import ConfigError

from .bad_input_corpus import (
    NONSENSE,
    REPO,
    Case,
    SetupUnavailable,
    command,
    corpus,
    judge,
    prepare,
    run_case,
    snapshot,
)
from .conftest import make_cfg
from .forked_cli import ForkedCli

CASES = corpus()
WORKERS = 2


def _selected(session: pytest.Session) -> list[Case]:
    """The corpus cases this session runs (all, or those picked with -k)."""
    names = ("test_bad_input_is_one_line_and_leaves_nothing",
             "test_console_command_agrees_with_forked_runs")
    picked = {item.callspec.params["case"].id: item.callspec.params["case"]
              for item in session.items if item.originalname in names}
    return list(picked.values())


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Run every selected case once, ``WORKERS`` at a time (one fork server each)."""
    cases = _selected(request.session)
    clis = [ForkedCli(REPO) for _ in range(WORKERS)]
    root = tmp_path_factory.mktemp("bad_input")

    def one(cli: ForkedCli, case: Case, folder: Path):
        try:
            return run_case(cli, case, folder), folder
        except SetupUnavailable as exc:
            return str(exc), folder

    def work(index: int) -> list:
        return [(case.id, one(clis[index], case, root / f"case{n}"))
                for n, case in enumerate(cases) if n % WORKERS == index]

    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            results = dict(item for part in pool.map(work, range(WORKERS)) for item in part)
    finally:
        for cli in clis:
            cli.close()
    return results


def test_corpus_is_large_and_unique() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_leaves_nothing(case: Case, outcomes) -> None:
    outcome, _ = outcomes[case.id]
    if isinstance(outcome, str):
        pytest.skip(outcome)
    assert not outcome.problems, f"{'; '.join(outcome.problems)}\n{outcome.lines}"


# The console command itself (a fresh interpreter, the package from this checkout) agrees
# with the forked runs: same status, same line, nothing written.
AGREE = [c for c in CASES if c.id in ("seed=abc", "results_dir=blocker/results [file]",
                                      "-m seed=0,abc")]


@pytest.mark.parametrize("case", AGREE, ids=[c.id for c in AGREE])
def test_console_command_agrees_with_forked_runs(case: Case, tmp_path: Path, outcomes) -> None:
    cleanup = prepare(case, tmp_path)
    try:
        before = snapshot(tmp_path)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-m", "unlearnbench.cli",
                               *command(case, tmp_path)], cwd=tmp_path / "cwd", env=env,
                              capture_output=True, text=True, timeout=300)
        after = snapshot(tmp_path)
    finally:
        cleanup()
    outcome = judge(case, proc.returncode, proc.stderr, before, after)
    assert not outcome.problems, outcome.problems
    forked, folder = outcomes[case.id]
    assert outcome.status == forked.status
    assert outcome.lines[0].replace(str(tmp_path), "<tmp>") == \
        forked.lines[0].replace(str(folder), "<tmp>")


# run(cfg) itself refuses what preflight refuses (for callers that skip the command line),
# before anything is written: the nonsense settings of issue 9 item 2 among them.
IN_PROCESS = [*(c.args for c in NONSENSE), ("train.epochs=0",), ("train.batch_size=-1",),
              ("seed=1.5",), ("scenario.forget_classes=[1.5]",), ("method=ft", "method.lr=-1"),
              ("scenario=samples", "scenario.count=1347")]


@pytest.mark.parametrize("args", IN_PROCESS, ids=[" ".join(a) for a in IN_PROCESS])
def test_run_refuses_before_writing(args: tuple[str, ...], tmp_path: Path) -> None:
    cfg = make_cfg(*args, results_dir=tmp_path / "results")
    key = args[-1].split("=")[0]
    with pytest.raises(ConfigError) as exc:
        runner.run(cfg, tmp_path / "job")
    assert exc.value.key.startswith(key) and "\n" not in str(exc.value)
    assert not list(tmp_path.iterdir())

"""Bad and hostile command lines, each with what a good answer must name.

A case is a command line (``{tmp}`` is the case's private folder), the bad key the one error
line must name and words of the allowed values it must give, and optionally a file-system
arrangement made before the command runs (a results dir that is a file, a read-only cache,
corrupt dataset files, a user's files in the run folder, ...). The same cases run in
tests/test_bad_input.py and, against an older checkout, in scripts/bad_input_report.py
(``old``: the same input in that version's config keys; None where it has none).

Method cases are generated from every conf/method/*.yaml and its function's typed
keyword-only parameters, so a new method joins the corpus without an edit here.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SAME: Any = object()  # `old` default: the same command line


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    key: str                       # the bad key (or override, or file) the line names
    allowed: str                   # words of the allowed values the line gives
    setup: str | None = None       # a name in SETUPS: files arranged before the command runs
    old: Any = SAME                # the args for the old version; None: no counterpart there
    status: int = 2
    old_key: str | None = None     # the key the old version's line should name, if renamed

    @property
    def id(self) -> str:
        text = " ".join(a for a in self.args if a != "-m")
        where = f" [{self.setup}]" if self.setup else ""
        return ("-m " if "-m" in self.args else "") + text.replace("{tmp}/", "") + where


def C(*args: str, key: str, allowed: str, **kw: Any) -> Case:  # noqa: N802 - a table row
    return Case(tuple(args), key, allowed, **kw)


# --- file-system arrangements (each returns a cleanup) --------------------------------------

class SetupUnavailable(RuntimeError):
    """This machine cannot make the case's arrangement (the case is skipped)."""


def make_read_only(folder: Path) -> Callable[[], None]:
    """chmod a-w; where that does not bind (root), mark the folder immutable (chattr +i), as a
    read-only mount would be. Raises SetupUnavailable where neither is possible."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return lambda: folder.chmod(0o755)
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)],
                                                 capture_output=True).returncode == 0:
        def undo() -> None:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
            folder.chmod(0o755)
        return undo
    folder.chmod(0o755)
    raise SetupUnavailable("cannot make a read-only folder here (root without chattr +i)")


def _nothing() -> None:
    return None


def _file(path: Path, text: str = "user data\n") -> Callable[[], None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return _nothing


def _corrupt_mnist(tmp: Path) -> Callable[[], None]:
    raw = tmp / "data" / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / f"{name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03garbage"))
    return _nothing


def _finished_job(folder: Path) -> Callable[[], None]:
    """A finished job of another config (seed 0) as the product writes it."""
    _file(folder / "metrics.csv", "run_id,seed,role,status,config_hash\njob,0,unlearned,ok,"
          + "ab" * 32 + "\n")
    return _file(folder / "done", "ok\n")


def _user_outputs(folder: Path) -> Callable[[], None]:
    _file(folder / "metrics.csv", "my,own\n1,2\n")
    return _file(folder / "config.yaml", "mine: true\n")


SETUPS: dict[str, Callable[[Path], Callable[[], None]]] = {
    "file": lambda tmp: _file(tmp / "blocker"),
    "read_only": lambda tmp: make_read_only(tmp / "ro"),
    "corrupt_mnist": _corrupt_mnist,
    "user_outputs": lambda tmp: _user_outputs(tmp / "mine"),
    "user_outputs_in_cwd": lambda tmp: _user_outputs(tmp / "cwd"),
    "user_summary": lambda tmp: _file(tmp / "mine" / "summary.csv", "my,own\n1,2\n"),
    "finished_job": lambda tmp: _finished_job(tmp / "job"),
}

CLASSES = "[0,1,2,3,4,5,6,7,8,9]"

# --- the corpus -----------------------------------------------------------------------------

TOP_LEVEL = [
    C("seed=abc", key="seed=abc", allowed="an integer in [0, 2147483647]"),
    C("seed=1.5", key="seed=1.5", allowed="an integer in [0, 2147483647]"),
    C("seed=-1", key="seed=-1", allowed="an integer in [0, 2147483647]"),
    C("seed=99999999999999999999", key="seed=99999999999999999999",
      allowed="an integer in [0, 2147483647]"),
    C("seed=true", key="seed=True", allowed="an integer"),
    C("device=meta", key="device=meta", allowed="auto, cpu"),
    C("device=mps", key="device=mps", allowed="auto, cpu"),
    C("device=cuda:9", key="device=cuda:9", allowed="cpu"),
    C("device=xyz", key="device=xyz", allowed="auto, cpu, cuda, cuda:N"),
    C("progress=maybe", key="progress=maybe", allowed="true or false"),
    # the tuning protocol's keys (read by every trial job of unlearnbench-tune)
    C("tune.trials=0", key="tune.trials=0", allowed="an integer in [1,"),
    C("tune.max_cost=-1", key="tune.max_cost=-1", allowed="a number in (0, inf)"),
    C("tune.validation=1.5", key="tune.validation=1.5", allowed="a number in (0, 1)"),
    C("tune.seeds=0", key="tune.seeds=0", allowed="an integer in [1, 10]", old=None),
    C("tune.seeds=11", key="tune.seeds=11", allowed="an integer in [1, 10]", old=None),
    C("tune.seeds=abc", key="tune.seeds=abc", allowed="an integer in [1, 10]", old=None),
    C("tune.seeds=1.5", key="tune.seeds=1.5", allowed="an integer in [1, 10]", old=None),
    C("~tune.seeds", key="tune.seeds", allowed="set in conf/config.yaml", old=None),
    C("results_dir={tmp}/blocker/results", key="results_dir", allowed="a folder",
      setup="file"),
    C("results_dir={tmp}/ro/results", key="results_dir", allowed="a writable folder",
      setup="read_only"),
    C("results_dir=", key="results_dir", allowed="a folder path"),
    C("cache_dir={tmp}/blocker", key="cache_dir", allowed="a folder", setup="file"),
    C("cache_dir={tmp}/ro", key="cache_dir", allowed="a writable folder", setup="read_only"),
    C("data_root={tmp}/blocker", key="data_root", allowed="a folder", setup="file"),
    C("hydra.run.dir={tmp}/blocker", key="hydra.run.dir", allowed="a folder", setup="file"),
    C("hydra.run.dir={tmp}/blocker/run", key="hydra.run.dir", allowed="a folder",
      setup="file"),
    C("-m", "hydra.sweep.dir={tmp}/blocker", key="hydra.sweep.dir", allowed="a folder",
      setup="file"),
    C("+foo=1", key="foo=1", allowed="the top-level keys"),
    C("~seed", key="seed", allowed="conf/config.yaml"),
    C("seed=${oc.env:NO_SUCH_VARIABLE_HERE}", key="seed", allowed="NO_SUCH_VARIABLE_HERE"),
]

TRAIN = [
    C("train.epochs=0", key="train.epochs=0", allowed="an integer in [1, 10000]"),
    C("train.epochs=-3", key="train.epochs=-3", allowed="an integer in [1, 10000]"),
    C("train.epochs=abc", key="train.epochs=abc", allowed="an integer in [1, 10000]"),
    C("train.batch_size=0", key="train.batch_size=0", allowed="an integer in [1,"),
    C("train.batch_size=-1", key="train.batch_size=-1", allowed="an integer in [1,"),
    C("train.lr=0", key="train.lr=0", allowed="a number in (0, 100]"),
    C("train.lr=-1", key="train.lr=-1", allowed="a number in (0, 100]"),
    C("train.lr=nan", key="train.lr=nan", allowed="a number in (0, 100]"),
    C("train.lr=inf", key="train.lr=inf", allowed="a number in (0, 100]"),
    C("train.momentum=-5", key="train.momentum=-5", allowed="a number in [0, 1)"),
    C("train.momentum=1", key="train.momentum=1", allowed="a number in [0, 1)"),
    C("train.weight_decay=-1", key="train.weight_decay=-1", allowed="a number in [0, inf)"),
    C("train.scheduler=foo", key="train.scheduler=foo", allowed="cosine, multistep, constant"),
    C("train.milestones=[a]", key="train.milestones=[a]", allowed="a list, each an integer"),
    C("train.gamma=0", key="train.gamma=0", allowed="a number in (0, 1]"),
    C("train.gamma=2", key="train.gamma=2", allowed="a number in (0, 1]"),
    C("train.augment=maybe", key="train.augment=maybe", allowed="true or false"),
    C("+train.foo=1", key="train.foo=1", allowed="epochs"),
    C("train=nope", key="train=nope", allowed="default, fast, generative, paper"),
]

EVAL = [
    C("eval.batch_size=0", key="eval.batch_size=0", allowed="an integer in [1,"),
    C("eval.metrics.mia.svc_c=0", key="eval.metrics.mia.svc_c=0", allowed="(0, inf)",
      old=None),
    C("+eval.metrics.mia.max_shadow=3000", key="eval.metrics.mia.max_shadow=3000",
      allowed="features, kernel_tol, solver, solver_tol, svc_c", old=None),
    C("eval.metrics.mia.features=[foo]", key="eval.metrics.mia.features=[foo]",
      allowed="confidence, entropy", old=("eval.mia_features=[foo]",),
      old_key="eval.mia_features"),
    C("eval.metrics.mia.features=[]", key="eval.metrics.mia.features=[]",
      allowed="a non-empty list", old=("eval.mia_features=[]",),
      old_key="eval.mia_features"),
    C("+eval.metrics.mia.foo=1", key="eval.metrics.mia.foo=1",
      allowed="features, kernel_tol, solver, solver_tol, svc_c", old=("+eval.mia_foo=1",),
      old_key="eval.mia_foo"),
    C("eval.metrics.accuracy._target_=os.system", key="eval.metrics.accuracy._target_",
      allowed="unlearnbench.metrics", old=None),
    C("+eval.metrics.x._target_=unlearnbench.metrics.nope.f", key="eval.metrics.x._target_",
      allowed="no module unlearnbench.metrics.nope", old=None),
    C("eval.metrics=null", key="eval.metrics", allowed="at least one metric", old=None),
    C(*(f"eval.metrics.{m}=null" for m in ("accuracy", "mia", "relearn", "anamnesis", "zrf",
                                            "inversion", "backdoor")),
      key="eval.metrics", allowed="at least one metric", old=None),
    C("+eval.foo=1", key="eval.foo=1", allowed="batch_size, judge, metrics"),
]

SCENARIO = [
    C("scenario=random", "scenario.fraction=abc", key="scenario.fraction=abc",
      allowed="0 < fraction < 1"),
    C("scenario=random", "scenario.fraction=0", key="scenario.fraction=0",
      allowed="0 < fraction < 1"),
    C("scenario=random", "scenario.fraction=1", key="scenario.fraction=1",
      allowed="0 < fraction < 1"),
    C("scenario=random", "scenario.fraction=1.5", key="scenario.fraction=1.5",
      allowed="0 < fraction < 1"),
    C("scenario=random", "scenario.fraction=0.9999", key="scenario.fraction=0.9999",
      allowed="n_train=1347"),
    C("scenario=random", "scenario.fraction=", key="scenario.fraction=",
      allowed="0 < fraction < 1"),
    C("scenario.forget_classes=5", key="scenario.forget_classes=5", allowed="a non-empty list"),
    C("scenario.forget_classes=[1.5]", key="scenario.forget_classes=[1.5]",
      allowed="each an integer"),
    C("scenario.forget_classes=[12]", key="scenario.forget_classes=[12]", allowed="[0, 9]"),
    C("scenario.forget_classes=[-1]", key="scenario.forget_classes=[-1]", allowed="[0,"),
    C("scenario.forget_classes=[]", key="scenario.forget_classes=[]",
      allowed="a non-empty list"),
    C("scenario.forget_classes=abc", key="scenario.forget_classes=abc",
      allowed="a non-empty list"),
    C(f"scenario.forget_classes={CLASSES}", key="scenario.forget_classes",
      allowed="retain set would be empty"),
    C("scenario=samples", "scenario.count=0", key="scenario.count=0",
      allowed="1 <= count < n_train"),
    C("scenario=samples", "scenario.count=1.5", key="scenario.count=1.5",
      allowed="1 <= count < n_train"),
    C("scenario=samples", "scenario.count=1347", key="scenario.count=1347",
      allowed="n_train=1347"),
    C("scenario=samples", "scenario.in_shards=9", key="scenario.in_shards=9",
      allowed="[1, scenario.shards=5]"),
    C("scenario=everything", key="scenario=everything", allowed="classwise, random, samples"),
    C("+scenario.foo=1", key="scenario.foo=1", allowed="forget_classes"),
]

RUNNER = [
    C("method.runner.access=everything", key="method.runner.access=everything",
      allowed="full, forget_only, zero_shot", old=None),
    C("+method.runner.foo=1", key="method.runner.foo=1", allowed="access", old=None),
    C("method=sisa", "sparsity=omp", key="method.runner.training",
      allowed="sparsity=none"),
    C("method=amnesiac", "sparsity=omp", key="method.runner.training",
      allowed="sparsity=none"),
    C("method=sisa", "method.runner.training._target_=os.system",
      key="method.runner.training._target_", allowed="unlearnbench.producers", old=None),
    C("method=sisa", "method.runner.training.shards=0", key="method.runner.training.shards=0",
      allowed="an integer in [1,", old=("method=sisa", "method.training.shards=0"),
      old_key="method.training.shards"),
    C("method=sisa", "method.runner.training.slices=abc",
      key="method.runner.training.slices=abc", allowed="an integer in [1,",
      old=("method=sisa", "method.training.slices=abc"), old_key="method.training.slices"),
    C("method=sisa", "method.aggregation=vote", key="method.aggregation=vote",
      allowed="mean_softmax, majority"),
    C("method=l1_sparse", "method.scheduler=cosine", key="method.scheduler=cosine",
      allowed="constant, linear, tanh"),
    C("method=l1_sparse", "method.epochs=2", "method.no_l1_epochs=2",
      key="method.no_l1_epochs=2", allowed="below method.epochs=2"),
    C("method=ga", "scenario=random", "+method.runner.forgets_classes=true",
      key="scenario=random", allowed="classwise", old=None),
]

SPARSITY = [
    C("sparsity=omp", "sparsity.rate=1.0", key="sparsity.rate=1.0", allowed="0 <= rate < 1"),
    C("sparsity=omp", "sparsity.rate=-0.1", key="sparsity.rate=-0.1", allowed="0 <= rate < 1"),
    C("sparsity=omp", "sparsity.rewind_epoch=99", key="sparsity.rewind_epoch=99",
      allowed="[0, 30]"),
    C("sparsity=imp", "sparsity.rounds=0", key="sparsity.rounds=0", allowed="an integer in [1,"),
    C("sparsity=synflow", "sparsity.iterations=0", key="sparsity.iterations=0",
      allowed="an integer in [1,"),
    C("sparsity.rate=0.5", key="sparsity.rate=0.5", allowed="sparsity=omp"),
    C("sparsity=dense", key="sparsity=dense", allowed="imp, none, omp, synflow"),
]

DATASET = [
    C("dataset.num_classes=5", key="dataset.num_classes=5", allowed="10"),
    C("dataset.test_fraction=0", key="dataset.test_fraction=0", allowed="a number in (0, 1)"),
    C("dataset.split_seed=-1", key="dataset.split_seed=-1", allowed="an integer in [0,"),
    C("+dataset.foo=1", key="dataset.foo=1", allowed="test_fraction"),
    C("dataset=imagenet", key="dataset=imagenet", allowed="digits"),
    C("dataset=mnist", "data_root={tmp}/data", key="dataset=mnist", allowed="download"),
    C("dataset=mnist", "data_root={tmp}/data", key="mnist", allowed="replace it",
      setup="corrupt_mnist"),
    C("dataset=synthetic", "dataset.size=2", key="dataset.size=2", allowed="an integer in [4,"),
]

MODEL = [
    C("model.hidden=[]", key="model.hidden=[]", allowed="a non-empty list"),
    C("model.hidden=[0]", key="model.hidden=[0]", allowed="each an integer in [1,"),
    C("model.hidden=64", key="model.hidden=64", allowed="a non-empty list"),
    C("model=resnet18", "model.width=-1", key="model.width=-1", allowed="an integer in [1,"),
    C("model=cnn", "model.channels=[a]", key="model.channels=[a]", allowed="each an integer"),
    C("model=transformer", key="model=transformer",
      allowed="allcnn, cnn, ddpm, mae, mlp, resnet18, vqgan"),
]

# task=inpainting (issue 14): an option of one task with the other is one line naming the
# options that task allows; the task's own keys are typed like every other component's.
TASK = [
    C("task=inpainting", "method=sisa", key="method=sisa", allowed="i2i_encoder, max_loss",
      old=None),
    C("task=inpainting", "model=mlp", key="model=mlp", allowed="ddpm, mae, vqgan", old=None),
    C("task=classification", "method=i2i_encoder", key="method=i2i_encoder",
      allowed="amnesiac, bad_teacher", old=None),
    C("model=mae", key="model=mae", allowed="allcnn, cnn, mlp, resnet18", old=None),
    C("task=inpainting", "task.mode=sideways", key="task.mode=sideways",
      allowed="inpaint, outpaint", old=None),
    C("task=inpainting", "task.box=1.5", key="task.box=1.5", allowed="(0, 1)", old=None),
    C("task=inpainting", "task.judge.epochs=0", key="task.judge.epochs=0",
      allowed="an integer in [1,", old=None),
    C("task=inpainting", "scenario=random", key="scenario=random", allowed="classwise",
      old=None),
    C("task=inpainting", "sparsity=omp", key="sparsity=omp", allowed="none", old=None),
    C("task=inpainting", "train.epochs=[0]", key="train.epochs=[0]",
      allowed="an integer in [1,", old=None),
    C("task=inpainting", "model=vqgan", "train.epochs=[1]", key="train.epochs=[1]",
      allowed="one per stage", old=None),
    C("task=inpainting", "method.retain_source=proxy", "method.proxy=digits",
      key="method.proxy=digits", allowed="a dataset other than dataset=digits", old=None),
]

PATHS_AND_TARGETS = [
    C("method=../scenario/random", key="method=../scenario/random", allowed="ft"),
    C("dataset=../../etc", key="dataset=../../etc", allowed="digits"),
    C("method=/etc/passwd", key="method=/etc/passwd", allowed="ft"),
    C("method=nope", key="method=nope", allowed="ft"),
    C("method._target_=os.system", key="method._target_=os.system",
      allowed="unlearnbench.methods"),
    C("model._target_=subprocess.Popen", key="model._target_=subprocess.Popen",
      allowed="unlearnbench.models"),
    C("scenario._target_=builtins.eval", key="scenario._target_=builtins.eval",
      allowed="unlearnbench.scenarios"),
    C("dataset._target_=os.system", key="dataset._target_=os.system",
      allowed="unlearnbench.data"),
    C("sparsity._target_=os.system", key="sparsity._target_=os.system",
      allowed="unlearnbench.producers"),
    C("task._target_=os.system", key="task._target_=os.system", allowed="unlearnbench.tasks",
      old=None),
    C("method._target_=unlearnbench.methods.ft.nope", key="method._target_",
      allowed="no callable nope"),
    C("+hydra.callbacks.x._target_=os.system", key="hydra.callbacks.x._target_",
      allowed="unlearnbench.callbacks"),
    C("hydra.callbacks.sweep_summary._target_=os.system",
      key="hydra.callbacks.sweep_summary._target_", allowed="unlearnbench.callbacks"),
    C("allow_targets=[os.]", "method._target_=os.system", key="allow_targets=os.",
      allowed="your own", old=None),
    C("allow_targets=[subprocess.]", key="allow_targets=subprocess.", allowed="your own",
      old=None),
    C("allow_targets=[unlearnbench.]", key="allow_targets=unlearnbench.",
      allowed="module prefixes", old=None),
    C("allow_targets=[mylab]", key="allow_targets=mylab", allowed="ending in a dot", old=None),
    C("allow_targets=mylab.", key="allow_targets=mylab.", allowed="a list", old=None),
]

OVERRIDES = [
    C("=1", key="=1", allowed="key=value"),
    C("a..b=1", key="a..b=1", allowed="key=value"),
    C("seed", key="seed", allowed="key=value"),
    C("seed=1", "seed=2", key="seed", allowed="once"),
    C("seed=0,1", key="seed=0,1", allowed="-m"),
    C("method.lr=${oc.env:HOME}", key="method.lr", allowed="a number in (0, 100]"),
    C("hydra.run.dir={tmp}/mine", key="hydra.run.dir", allowed="a new or empty folder",
      setup="user_outputs"),
    C("hydra.run.dir=.", key="hydra.run.dir=.", allowed="a new or empty folder",
      setup="user_outputs_in_cwd"),
    C("hydra.run.dir={tmp}/job", "seed=1", key="hydra.run.dir", allowed="another config",
      setup="finished_job", old=None),
    C("-m", "seed=0,1", "hydra.sweep.dir={tmp}/mine", key="hydra.sweep.dir",
      allowed="summary.csv", setup="user_summary", old=None),
    C("-m", "seed=0,1", "hydra.sweep.subdir=same", key="hydra.sweep.subdir=same",
      allowed="config hash", old=None),
    C("hydra.output_subdir=.hydra", key="hydra.output_subdir=.hydra", allowed="null",
      old=None),
    C("hydra/job_logging=default", key="hydra/job_logging=default", allowed="stdout",
      old=None),
    C("hydra/launcher=../../x", key="hydra/launcher=../../x", allowed="basic"),
    C("--foo", key="--foo", allowed="key=value"),
    C("--config-dir", "{tmp}", key="--config-dir", allowed="the configs of conf/", old=None),
    C("-cn", "other", key="-cn", allowed="the configs of conf/", old=None),
    C("--experimental-rerun", "{tmp}/config.pickle", key="--experimental-rerun",
      allowed="the configs of conf/", old=None),
    C("-m", "seed=0,1", "cache_dir={tmp}/ro", key="cache_dir", allowed="a writable folder",
      setup="read_only", old=None),
    C("model=cnn", "model.channels=[8,8,8,8]", key="model=cnn", allowed="shape (1, 8, 8)"),
]

SWEEPS = [
    C("-m", "seed=0,abc", key="seed=abc", allowed="an integer"),
    C("-m", "dataset=digits,mnist", "data_root={tmp}/data", key="dataset=mnist",
      allowed="download"),
    C("-m", "scenario=samples", "scenario.count=10,5000", key="scenario.count=5000",
      allowed="n_train=1347"),
    C("-m", "method=ft,nope", key="method=nope", allowed="ft"),
    C("-m", "train.epochs=3,0", key="train.epochs=0", allowed="an integer in [1, 10000]"),
    C("-m", "method=ft,ga", "method.epochs=1,0", key="method.epochs=0",
      allowed="an integer in [1, 10000]"),
    C("-m", "scenario=random", "scenario.fraction=interval(0.1, 1.5)",
      key="scenario.fraction=1.5", allowed="0 < fraction < 1"),
    C("-m", "+experiment=nope", key="experiment=nope", allowed="smoke"),
]

# Issue 9 item 2: the settings that used to train nothing and report `ok`.
NONSENSE = [
    C("method.epochs=0", key="method.epochs=0", allowed="an integer in [1, 10000]"),
    C("method.epochs=-3", key="method.epochs=-3", allowed="an integer in [1, 10000]"),
    C("method.lr=-1", key="method.lr=-1", allowed="a number in (0, 100]"),
    C("method.epochs=abc", key="method.epochs=abc", allowed="an integer in [1, 10000]"),
    C("method=rl", "train.batch_size=-1", key="train.batch_size=-1",
      allowed="an integer in [1,"),
]


def _bad_values(tp: Any) -> tuple[str | None, str | None]:
    """A value outside a typed parameter's range or choices, and a word where a number goes
    (None where the type has no such value)."""
    from typing import Literal, get_args, get_origin

    from unlearnbench.params import Range, _is_union, _split_annotated

    base, meta = _split_annotated(tp)
    if _is_union(base):
        base, inner = _split_annotated(next(a for a in get_args(base) if a is not type(None)))
        meta = meta + inner
    if get_origin(base) is Literal:
        return "bogus", None
    if base is bool:
        return "maybe", None
    rng = next((m for m in meta if isinstance(m, Range)), None)
    if base not in (int, float) or rng is None:
        return None, None
    if rng.low is None:
        return None, "abc"
    low = rng.low if rng.low_open else rng.low - 1
    return (str(int(low)) if float(low).is_integer() else f"{low:g}"), "abc"


def method_cases() -> list[Case]:
    """For every method YAML: an unknown key, each hyperparameter outside its range or
    choices, and a word for its first number (from the function's annotations)."""
    from typing import get_type_hints

    from omegaconf import OmegaConf

    from unlearnbench.params import describe, keyword_parameters
    from unlearnbench.registry import resolve

    cases = []
    for path in sorted((CONF / "method").glob("*.yaml")):
        name = path.stem
        node = OmegaConf.load(path)
        fn = resolve(node["_target_"], "method", "method._target_")
        params = sorted(keyword_parameters(fn))
        # a method of another task is checked with that task (task=inpainting)
        task = [f"task={t}" for t in (node.runner.get("tasks") or ["classification"])][:1]
        task = [] if task == ["task=classification"] else task
        cases.append(C(f"method={name}", *task, "+method.foo=1", key="method.foo=1",
                       allowed=f"the keys {', '.join(params)}" if params else "no keys"))
        hints = get_type_hints(fn, include_extras=True)
        word_given = False
        for param in keyword_parameters(fn):
            out_of_range, word = _bad_values(hints[param])
            allowed = describe(hints[param]).split(" or ")[0]
            values = [out_of_range] + ([word] if word and not word_given else [])
            word_given = word_given or word is not None
            cases += [C(f"method={name}", *task, f"method.{param}={v}",
                        key=f"method.{param}={v}",
                        allowed=allowed) for v in values if v is not None]
    return cases


def corpus() -> list[Case]:
    return (TOP_LEVEL + TRAIN + EVAL + SCENARIO + RUNNER + SPARSITY + DATASET + MODEL + TASK
            + PATHS_AND_TARGETS + OVERRIDES + SWEEPS + NONSENSE + method_cases())


# --- running one case -----------------------------------------------------------------------

BASE = {"results_dir": "results_dir={tmp}/results", "progress": "progress=false"}


def command(case: Case, tmp: Path, args: tuple[str, ...] | None = None) -> list[str]:
    """The case's command line for its folder ``tmp``, with a private results dir and no
    progress bars unless the case sets those keys itself."""
    args = case.args if args is None else args
    given = {a.lstrip("+~").split("=", 1)[0] for a in args}
    extra = [v for k, v in BASE.items() if k not in given]
    return [a.replace("{tmp}", str(tmp)) for a in (*extra, *args)]


def snapshot(folder: Path, skip: str = "io") -> dict[str, Any]:
    """Every path under ``folder`` (but ``skip``) with its content, for a before/after check."""
    out: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] == skip:
            continue
        out[str(rel)] = path.read_bytes() if path.is_file() else "<dir>"
    return out


def prepare(case: Case, tmp: Path) -> Callable[[], None]:
    """The case's folder: a working directory holding a user's file, and its arrangement."""
    (tmp / "cwd").mkdir(parents=True)
    (tmp / "cwd" / "notes.log").write_text("the user's own notes\n")
    return SETUPS[case.setup](tmp) if case.setup else _nothing


@dataclass(frozen=True)
class Outcome:
    """What one run of a case did, judged against the case."""

    status: int
    lines: list[str]
    traceback: bool
    names_key: bool
    names_allowed: bool
    changed: list[str]     # paths added, removed or modified under the case's folder

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_for(self, case: Case) -> list[str]:
        out = []
        if self.status != case.status:
            out.append(f"exit status {self.status}, expected {case.status}")
        if self.traceback:
            out.append("traceback")
        if len(self.lines) != 1:
            out.append(f"{len(self.lines)} stderr lines")
        if not self.names_key:
            out.append(f"does not name {case.key!r}")
        if not self.names_allowed:
            out.append(f"does not give {case.allowed!r}")
        if self.changed:
            out.append(f"changed files: {', '.join(self.changed[:5])}")
        return out

    problems: list[str] = ()  # type: ignore[assignment]


def judge(case: Case, status: int, stderr: str, before: dict[str, Any],
          after: dict[str, Any]) -> Outcome:
    lines = [line for line in stderr.splitlines() if line.strip()]
    text = " ".join(lines)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    outcome = Outcome(status, lines, "Traceback" in stderr, case.key in text,
                      case.allowed in text, changed)
    object.__setattr__(outcome, "problems", outcome.problems_for(case))
    return outcome


def run_case(cli: Any, case: Case, tmp: Path, args: tuple[str, ...] | None = None,
             timeout: float = 120) -> Outcome:
    """Arrange the case's folder, run the command with ``cli`` (a ForkedCli), judge it."""
    cleanup = prepare(case, tmp)
    try:
        before = snapshot(tmp)
        result = cli.run(command(case, tmp, args), cwd=tmp / "cwd", out_dir=tmp / "io",
                         timeout=timeout)
        after = snapshot(tmp)
    finally:
        cleanup()
    return judge(case, result.returncode, result.stderr, before, after)

"""The one validation layer: every key of a composed config is checked (type, range, choice)
before anything is trained or written, by `run(cfg)` and by the preflight of every sweep job.

Rules live in code, beside what they govern: a component's keyword-only parameters carry
their type and range in their annotations (``params.py``), the train recipe's in the fields of
``Recipe``, the top-level keys' in :class:`Settings`. ``validate`` turns a config into a
:class:`Plan` of resolved, checked objects; ``check_with_data`` adds the checks that need the
loaded data (counts against the dataset size), run for every job before the first starts.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import schema
from .context import ACCESS_LEVELS, TrainEnv
from .errors import ConfigError, NotApplicable, UserError
from .params import (
    BatchSize,
    OpenUnit,
    PositiveFloat,
    PositiveInt,
    Range,
    Seed,
    check_call,
    check_value,
    dataclass_call_check,
)
from .producers.ensemble import DenseEnsemble
from .registry import component_name, resolve
from .schema import METRIC_KEYS, RelativeColumn, config_hash
from .training import Recipe
from .transfer import InfluenceSettings, TransferSettings

GROUPS = ("dataset", "model", "method", "scenario", "train", "eval", "sparsity", "task")
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


DEFAULT_TASKS = ("classification",)  # what a method serves when its runner lists no tasks


def serves_task(tasks: Sequence[str] | None, same_as_role: str | None, task: str) -> bool:
    """Whether a method serves ``task``: one its ``runner.tasks`` lists (default
    classification), or it stands for a reference role (``same_as_role``: the retrain), which
    serves every task. The one rule behind the validation layer, its error lines and the
    tuner's plan."""
    return same_as_role is not None or task in (tasks or DEFAULT_TASKS)


def task_options(group: str, task: str, generative: bool) -> list[str]:
    """The options of conf/<group> (model or method) that serve ``task``: a generative task
    takes the models under unlearnbench.generative and the methods whose runner lists it; the
    retrain serves every task. For error lines that name the allowed values."""
    import yaml

    found = []
    for path in sorted((CONF_DIR / group).glob("*.yaml")):
        node = yaml.safe_load(path.read_text()) or {}
        if group == "method":
            runner = node.get("runner") or {}
            serves = serves_task(runner.get("tasks"), runner.get("same_as_role"), task)
        else:
            serves = str(node.get("_target_", "")).startswith("unlearnbench.generative.") \
                == generative
        if serves:
            found.append(path.stem)
    return found


@dataclass(frozen=True)
class Settings:
    """Top-level keys besides the config groups."""

    seed: Seed
    device: str
    results_dir: str
    cache_dir: str
    data_root: str
    progress: bool
    allow_targets: list[str]


# 0 = off; else the share of the training set held out as the validation split (tuning).
ValidationFraction = Annotated[float, Range(0, 1, high_open=True,
                                            hint="0 (off) or a fraction in (0, 1)")]
SETTINGS_TYPES: dict[str, Any] = {
    "seed": Seed, "device": str, "results_dir": str, "cache_dir": str, "data_root": str,
    "progress": bool, "allow_targets": list[str], "validation": ValidationFraction,
    "tune": Mapping[str, Any],
}


# how many seeds a tuning trial averages its objective over (runner.trial_seeds)
TrialSeeds = Annotated[int, Range(1, 10, hint="an integer in [1, 10] (seeds per tuning trial)")]


@dataclass(frozen=True)
class TuneSettings:
    """The ``tune`` node: the tuning protocol's budget (README "Tuning")."""

    trials: PositiveInt
    max_cost: PositiveFloat
    validation: OpenUnit
    seed: Seed
    dir: str
    seeds: TrialSeeds
    tuned_dir: str | None = None
    stop_at_max_cost: bool = False
DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
NumClasses = Annotated[int, Range(2, 100_000)]


@dataclass(frozen=True)
class RunnerKeys:
    """A method YAML's reserved ``runner`` node: read by the runner, never passed on."""

    access: Literal["full", "forget_only", "zero_shot"]
    training: Mapping[str, Any] | None = None    # a producer config: a training variant
    same_as_role: Literal["retrain"] | None = None  # the output is that reference itself
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))  # tasks it serves
    forgets_classes: bool = False  # needs a class-wise forget set (its split has classes)
    tuned: Mapping[str, Any] | None = None  # set by a conf/tuned file: where it came from


NModels = Annotated[int, Range(8, 100_000, hint="an integer >= 8 (the ceiling compares two "
                                                "halves of the retrain ensemble, each of at "
                                                "least 4 models)")]
# The keys only `unlearnbench-privacy` composes (conf/privacy.yaml): top-level n_models and
# the privacy group.
PRIVACY_KEYS = ("n_models", "privacy")


@dataclass(frozen=True)
class PrivacyKeys:
    """The `privacy` group (conf/privacy/): how the per-example scores are computed
    (metrics/per_example.py), and the top-level ``n_models``."""

    n_models: NModels
    delta: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 1e-5  # F's delta
    shadow_fraction: OpenUnit = 0.5      # U-LiRA: share of each side fitting the Gaussians
    klom_bins: Annotated[int, Range(2, 10_000)] = 20
    klom_mode: Literal["reference", "fixed"] = "reference"
    klom_direction: Literal["retrain_unlearned", "unlearned_retrain"] = "retrain_unlearned"
    vectorised: bool = True              # use a method's unlearn_ensemble where it has one


@dataclass
class Plan:
    """A validated job: resolved config and the objects it names."""

    cfg: dict[str, Any]
    seed: int
    device: torch.device
    method: str
    method_fn: Callable[..., Any]
    runner: RunnerKeys
    task: Any
    stacked: list[Any] = field(default_factory=list)       # producers over dense training
    columns: dict[str, Any] = field(default_factory=dict)  # what the stack adds to the rows
    variant: Any = None                                    # the method's training producer
    judge: Any = None                                      # eval.judge's producer
    privacy: PrivacyKeys | None = None                     # unlearnbench-privacy jobs only
    ensemble: DenseEnsemble | None = None                  # ... and their ensemble producer
    # the method's vectorised form (its module's `unlearn_ensemble`), hyperparameters bound
    method_ensemble_fn: Callable[..., Any] | None = None

    @property
    def allow(self) -> tuple[str, ...]:
        return tuple(self.cfg.get("allow_targets") or ())


def resolve_device(spec: str) -> torch.device:
    if not isinstance(spec, str) or not DEVICE.match(spec):
        raise ConfigError("device", spec, "auto, cpu, cuda, cuda:N")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device", spec, "auto, cpu (no CUDA device is available here)")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ConfigError("device", spec, f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    return torch.device(spec)


def resolved(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The config as plain containers with every interpolation resolved; a broken
    interpolation is one line naming its key."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))
    if "hydra" in cfg:  # Hydra's own node (compose with return_hydra_config) is not ours
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
    try:
        out = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        raise ConfigError(str(key), "(unresolvable)", " ".join(str(exc).split()[:30])) from None
    assert isinstance(out, dict)
    out.pop("hydra", None)
    return out


def _node(cfg: Mapping[str, Any], key: str) -> dict[str, Any]:
    node = cfg.get(key)
    if not isinstance(node, Mapping):
        raise ConfigError(key, node, f"a config group ({key}=<option>)")
    return dict(node)


def _params(node: Mapping[str, Any], descriptor: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in descriptor}


def _descriptor(node: Mapping[str, Any], group: str) -> None:
    check_value(f"{group}.name", node.get("name"), str)


def _check_settings(cfg: Mapping[str, Any]) -> None:
    allowed = sorted({*GROUPS, *SETTINGS_TYPES})
    for key, value in cfg.items():
        if key in GROUPS or key in PRIVACY_KEYS:
            continue
        if key not in SETTINGS_TYPES:
            raise ConfigError(key, value, f"the top-level keys {', '.join(allowed)}")
        check_value(key, value, SETTINGS_TYPES[key])
    for key in SETTINGS_TYPES:
        if key not in cfg:
            raise ConfigError(key, "(missing)", "set in conf/config.yaml")
    for prefix in cfg["allow_targets"]:
        top = prefix.split(".")[0]
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\.$", prefix) \
                or top in ("unlearnbench", "builtins") or top in sys.stdlib_module_names:
            raise ConfigError("allow_targets", prefix,
                              "module prefixes of your own plug-ins ending in a dot, e.g. "
                              "mylab.methods. (not unlearnbench. or the standard library)")
    for key in ("results_dir", "cache_dir", "data_root"):
        if not cfg[key].strip():
            raise ConfigError(key, "''", "a folder path")
    dataclass_call_check(TuneSettings, cfg["tune"], "tune")
    for key in ("trials", "max_cost", "validation", "seed", "seeds", "dir"):
        if key not in cfg["tune"]:
            raise ConfigError(f"tune.{key}", "(missing)", "set in conf/config.yaml")


def _check_dataset(cfg: Mapping[str, Any], allow: tuple[str, ...],
                   key: str = "dataset") -> None:
    from .data import DESCRIPTOR_KEYS, resolve_loader

    node = _node(cfg, key)
    _descriptor(node, key)
    check_value(f"{key}.num_classes", node.get("num_classes"), NumClasses)
    if "recipe" in node:
        dataclass_call_check(Recipe, node["recipe"], f"{key}.recipe")
    check_call(resolve_loader(node, f"{key}._target_", allow), _params(node, DESCRIPTOR_KEYS),
               key)


def _check_component(cfg: Mapping[str, Any], group: str, fn: Callable[..., Any],
                     descriptor: tuple[str, ...]) -> None:
    node = _node(cfg, group)
    _descriptor(node, group)
    check_call(fn, _params(node, descriptor), group)


def _check_model(cfg: Mapping[str, Any], task: str, generative: bool,
                 allow: tuple[str, ...]) -> None:
    """The model serves the task (a classifier, or a generator for a generative task) and its
    parameters are typed."""
    from .models import DESCRIPTOR_KEYS as MODEL_KEYS
    from .models import model_class

    node = _node(cfg, "model")
    _descriptor(node, "model")
    target = node.get("_target_")
    if isinstance(target, str) and target.startswith("unlearnbench.") \
            and target.startswith("unlearnbench.generative.") != generative:
        raise ConfigError("model", node["name"], f"a model for task={task}: "
                          f"{', '.join(task_options('model', task, generative))}")
    if generative:
        from .tasks.inpainting import MODEL_DESCRIPTOR_KEYS, generator_class

        _check_component(cfg, "model", generator_class(node, allow), MODEL_DESCRIPTOR_KEYS)
    else:
        _check_component(cfg, "model", model_class(node, allow), MODEL_KEYS)


def _check_generator_train(cfg: Mapping[str, Any], recipe_type: type) -> None:
    """The generator recipe (conf/train/generative.yaml): its fields' annotations."""
    node = _node(cfg, "train")
    dataclass_call_check(recipe_type, node, "train", extra_keys=("name",))
    for required in ("epochs", "batch_size", "lr"):
        if required not in node:
            raise ConfigError(f"train.{required}", "(missing)", "a value in conf/train/")
    if not isinstance(node["epochs"], list) or not node["epochs"]:
        raise ConfigError("train.epochs", node["epochs"],
                          "a list of positive integers, one per training stage")


def _check_train(cfg: Mapping[str, Any]) -> Recipe:
    node = _node(cfg, "train")
    dataclass_call_check(Recipe, node, "train", extra_keys=("name",))
    for required in ("epochs", "batch_size", "lr"):
        if required not in node:
            raise ConfigError(f"train.{required}", "(missing)", "a value in conf/train/")
    return Recipe.from_cfg(node)


def _check_relative(node: Any, key: str) -> None:
    """A metric's ``relative:`` node: new column -> {of: <metric column>, op: ratio|difference}."""
    if not isinstance(node, Mapping):
        raise ConfigError(key, node, "a mapping of column names to {of: <column>, op: "
                                     "ratio | difference}")
    for column, spec in node.items():
        if not isinstance(spec, Mapping) or "of" not in spec:
            raise ConfigError(f"{key}.{column}", spec, "{of: <metric column>, op: ratio | "
                                                       "difference}")
        dataclass_call_check(RelativeColumn, spec, f"{key}.{column}")


def _check_judge(cfg: Mapping[str, Any], node: Any, allow: tuple[str, ...]) -> Any:
    """``eval.judge``: the model-inversion judge's model config and seed; its architecture must
    differ from the job's model (an independent judge)."""
    from .models import DESCRIPTOR_KEYS as MODEL_KEYS
    from .models import model_class
    from .producers.judge import Judge

    if node is None:
        return None
    if not isinstance(node, Mapping):
        raise ConfigError("eval.judge", node, "a mapping with model: {_target_: ...} and seed")
    check_call(Judge, node, "eval.judge")
    model = node["model"]
    check_value("eval.judge.model.name", model.get("name"), str)
    check_call(model_class(model, allow), _params(model, MODEL_KEYS), "eval.judge.model")
    job_model = _node(cfg, "model")
    if _params(model, ("name",)) == _params(job_model, ("name",)):
        raise ConfigError("eval.judge.model", model.get("name"),
                          f"an architecture other than the job's model={job_model.get('name')} "
                          "(the judge must be independent of the models it scores)")
    return Judge(**node)


def _check_eval(cfg: Mapping[str, Any], allow: tuple[str, ...]) -> Any:
    """Check every key of ``eval``; return the judge's producer (None without eval.judge)."""
    node = _node(cfg, "eval")
    judge = None
    for key, value in node.items():
        if key == "batch_size":
            check_value("eval.batch_size", value, BatchSize)
        elif key == "judge":
            judge = _check_judge(cfg, value, allow)
        elif key == "metrics":
            if not isinstance(value, Mapping) or all(m is None for m in value.values()):
                raise ConfigError("eval.metrics", value, "a mapping with at least one metric "
                                  "config (switch some off with eval.metrics.<name>=null, "
                                  "not all)")
            for name, metric in value.items():
                if metric is None:
                    continue
                if not isinstance(metric, Mapping):
                    raise ConfigError(f"eval.metrics.{name}", metric, "a metric config or null")
                fn = resolve(metric.get("_target_"), "metric",
                             f"eval.metrics.{name}._target_", allow)
                check_call(fn, _params(metric, METRIC_KEYS), f"eval.metrics.{name}")
                _check_gaps(metric.get("gaps"), f"eval.metrics.{name}.gaps")
                if "relative" in metric:
                    _check_relative(metric["relative"], f"eval.metrics.{name}.relative")
        else:
            raise ConfigError(f"eval.{key}", value, "the keys batch_size, judge, metrics")
    return judge


GAP_COLUMN = re.compile(r"^gap_[A-Za-z0-9_]+$")


def _check_gaps(gaps: Any, key: str) -> None:
    """A metric's extra gaps: {gap column named gap_<...>: a metric column name}."""
    if gaps is None:
        return
    allowed = "a mapping {gap_<name>: <metric column>}, e.g. {gap_relearn: relearn_FA}"
    if not isinstance(gaps, Mapping):
        raise ConfigError(key, gaps, allowed)
    for column, metric in gaps.items():
        if not isinstance(column, str) or not GAP_COLUMN.match(column) \
                or column in ("gap_" + m for m in schema.GAP_METRICS):
            raise ConfigError(f"{key}.{column}", metric, allowed + " (not one of the "
                              "papers' gap_UA, gap_RA, gap_TA, gap_MIA)")
        if not isinstance(metric, str) or not metric:
            raise ConfigError(f"{key}.{column}", metric, allowed)


def _producer(node: Mapping[str, Any], group: str, key: str, allow: tuple[str, ...]) -> Any:
    cls = resolve(node.get("_target_"), group, f"{key}._target_", allow)
    params = _params(node, ("_target_", "name"))
    check_call(cls, params, key)
    return cls(**params)


def _check_method(cfg: Mapping[str, Any], allow: tuple[str, ...]
                  ) -> tuple[str, Callable[..., Any], RunnerKeys, Any]:
    node = _node(cfg, "method")
    fn = resolve(node.get("_target_"), "method", "method._target_", allow)
    if node.get("_partial_") is not True:
        raise ConfigError("method._partial_", node.get("_partial_"), "true")
    runner = node.get("runner")
    if not isinstance(runner, Mapping):
        raise ConfigError("method.runner", runner, "a mapping with access: "
                          + " | ".join(ACCESS_LEVELS))
    dataclass_call_check(RunnerKeys, runner, "method.runner")
    if "access" not in runner:
        raise ConfigError("method.runner.access", "(missing)", " | ".join(ACCESS_LEVELS))
    keys = RunnerKeys(**runner)
    variant = None
    if keys.training is not None:
        variant = _producer(keys.training, "producer", "method.runner.training", allow)
    hyper = _params(node, ("_target_", "_partial_", "runner"))
    check_call(fn, hyper, "method")
    return component_name(node["_target_"]), functools.partial(fn, **hyper), keys, variant


def ensemble_form(method_fn: functools.partial) -> Callable[..., Any] | None:
    """A method's optional vectorised form: ``unlearn_ensemble`` beside ``unlearn`` in its
    module, taking the same hyperparameters (bound here)."""
    fn = getattr(sys.modules[method_fn.func.__module__], "unlearn_ensemble", None)
    return None if fn is None else functools.partial(fn, **method_fn.keywords)


def _check_privacy(plain: Mapping[str, Any], plan: Plan) -> None:
    """The keys of `unlearnbench-privacy` and what they rule out (one line each, before
    anything is trained)."""
    if not all(k in plain for k in PRIVACY_KEYS):
        missing = next(k for k in PRIVACY_KEYS if k not in plain)
        raise ConfigError(missing, "(missing)", "set in conf/privacy.yaml (run "
                          "unlearnbench-privacy for the per-example protocol)")
    node = _node(plain, "privacy")
    _descriptor(node, "privacy")
    if "n_models" in node:
        raise ConfigError("privacy.n_models", node["n_models"], "the top-level key n_models")
    dataclass_call_check(PrivacyKeys, node, "privacy", extra_keys=("name",))
    check_value("n_models", plain["n_models"], NModels)
    keys = PrivacyKeys(n_models=plain["n_models"], **_params(node, ("name",)))
    half = keys.n_models // 2            # the ceiling's halves; U-LiRA splits each again
    shadows = round(half * keys.shadow_fraction)
    if shadows < 2 or shadows >= half:
        raise ConfigError("privacy.shadow_fraction", keys.shadow_fraction,
                          f"a fraction of the ceiling's halves of {half} models (n_models="
                          f"{keys.n_models}) leaving >= 2 shadow and >= 1 target models")
    if getattr(plan.task, "generative", False):
        raise ConfigError("task", plan.task.name, "classification (unlearnbench-privacy "
                          "scores classifiers)")
    if plan.stacked:
        raise ConfigError("sparsity", plain["sparsity"]["name"],
                          "none (unlearnbench-privacy trains dense ensembles)")
    if plan.runner.same_as_role is not None:
        raise ConfigError("method", plan.method, "a method that unlearns (the retrain-vs-"
                          "retrain score is the ceiling every privacy job reports)")
    if plain["train"].get("augment"):
        raise ConfigError("train.augment", "true", "false (the ensemble trainer draws no "
                          "per-member augmentation)")
    plan.privacy = keys
    plan.ensemble = DenseEnsemble(n_models=keys.n_models)
    plan.method_ensemble_fn = ensemble_form(plan.method_fn) if keys.vectorised else None


def validate(cfg: DictConfig | Mapping[str, Any]) -> Plan:
    """Check every key of a composed config; a Plan of what it names, or ConfigError."""
    from .scenarios import DESCRIPTOR_KEYS as SCENARIO_KEYS
    from .scenarios import scenario_function

    plain = resolved(cfg)
    missing = [g for g in GROUPS if g not in plain]
    if missing:
        raise ConfigError(missing[0], "(missing)", f"a config group ({missing[0]}=<option>)")
    _check_settings(plain)
    allow = tuple(plain["allow_targets"])
    device = resolve_device(plain["device"])
    _check_dataset(plain, allow)
    task_node = _node(plain, "task")
    _descriptor(task_node, "task")
    task_cls = resolve(task_node.get("_target_"), "task", "task._target_", allow)
    task_params = _params(task_node, ("_target_", "name"))
    check_call(task_cls, task_params, "task")
    generative = bool(getattr(task_cls, "generative", False))
    _check_model(plain, task_node["name"], generative, allow)
    _check_component(plain, "scenario", scenario_function(_node(plain, "scenario"), allow),
                     SCENARIO_KEYS)
    if generative:
        _check_generator_train(plain, task_cls.recipe_type)
    else:
        _check_train(plain)
    judge = _check_eval(plain, allow)
    sparsity = _node(plain, "sparsity")
    _descriptor(sparsity, "sparsity")
    pruning = _producer(sparsity, "sparsity", "sparsity", allow)
    method, method_fn, runner, variant = _check_method(plain, allow)
    if variant is not None and not getattr(pruning, "identity", False):
        raise ConfigError("method.runner.training", method,
                          "no training variant with sparsity != none (a masked "
                          f"{method} is not defined); use sparsity=none")
    if variant is not None and runner.same_as_role is not None:
        raise ConfigError("method.runner.same_as_role", runner.same_as_role,
                          "null for a method with a training variant")
    if not serves_task(runner.tasks, runner.same_as_role, task_node["name"]):
        options = task_options("method", task_node["name"], generative)
        raise NotApplicable("method", method, f"a method for task={task_node['name']}: "
                            f"{', '.join(options)} (method={method} serves "
                            f"{', '.join(runner.tasks)})")
    task = task_cls(plain["eval"], allow, **task_params)
    stacked = [] if getattr(pruning, "identity", False) else [pruning]
    if generative:
        if stacked:
            raise ConfigError("sparsity", sparsity["name"],
                              f"none (task={task_node['name']} has no pruned generators)")
        judge = task.judge_producer()
    columns = dict(pruning.columns()) if hasattr(pruning, "columns") else {}
    plan = Plan(cfg=plain, seed=int(plain["seed"]), device=device, method=method,
                method_fn=method_fn, runner=runner, task=task, stacked=stacked,
                columns=columns, variant=variant, judge=judge)
    if any(k in plain for k in PRIVACY_KEYS):
        _check_privacy(plain, plan)
    return plan


def _check_model_fits(plan: Plan, env: TrainEnv) -> None:
    """The model takes the dataset's images and gives one score per class: a model too deep
    for small images (`model.channels` pooling 8x8 down to nothing) is one line here, not a
    crash in the middle of training. Torch's RNG is left as it was."""
    name, shape = plan.cfg["model"]["name"], tuple(env.data.input_shape)
    state = torch.random.get_rng_state()
    try:
        model = env.build_model().eval()
        with torch.no_grad():
            out = model(env.data.train_x[:2])
    except (RuntimeError, ValueError) as exc:
        why = " ".join(str(exc).split())[:200]
        raise ConfigError("model", name, f"a model that takes the {plan.cfg['dataset']['name']} "
                          f"images of shape {shape} ({type(exc).__name__}: {why})") from None
    finally:
        torch.random.set_rng_state(state)
    if tuple(out.shape) != (len(env.data.train_x[:2]), env.data.num_classes):
        raise ConfigError("model", name, f"a model with {env.data.num_classes} outputs per "
                          f"image (it gives shape {tuple(out.shape)})")


@dataclass
class TransferPlan:
    """A validated `unlearnbench-transfer` job: the source job's plan (its cfg carries the
    `transfer` node, so the job's config.yaml and config hash do), the transfer settings and
    the target dataset's config."""

    plan: Plan
    settings: TransferSettings
    target: dict[str, Any]
    config_hash: str


_OPTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _target_dataset(name: Any, dataset_dir: Path, allow: tuple[str, ...]) -> dict[str, Any]:
    """The target's conf/dataset/<name>.yaml, checked like the source dataset."""
    options = ", ".join(sorted(p.stem for p in dataset_dir.glob("*.yaml")))
    path = dataset_dir / f"{name}.yaml"
    if not isinstance(name, str) or not _OPTION.match(name) or not path.is_file():
        raise ConfigError("transfer.target", name, f"a dataset option: {options}")
    node = resolved(OmegaConf.load(path))
    _check_dataset({"transfer.target": node}, allow, "transfer.target")
    return node


def validate_transfer(cfg: DictConfig | Mapping[str, Any], dataset_dir: Path) -> TransferPlan:
    """Check an `unlearnbench-transfer` config: every key of the source job (as `validate`)
    and of its `transfer` node, before anything is trained or written."""
    plain = resolved(cfg)
    node = plain.pop("transfer", None)
    if not isinstance(node, Mapping):
        raise ConfigError("transfer", node, "a mapping (see conf/transfer.yaml)")
    plan = validate(plain)
    scenario = plan.cfg["scenario"]
    if scenario.get("_target_") != "unlearnbench.scenarios.classwise":
        raise ConfigError("scenario", scenario.get("name"), "classwise (transfer drops whole "
                          "source classes: scenario.forget_classes, or transfer.classes="
                          "influence)")
    dataclass_call_check(TransferSettings, node, "transfer")
    if "target" not in node:
        raise ConfigError("transfer.target", "(missing)", "a dataset option (conf/dataset)")
    recipes = {}
    for key in ("probe", "finetune"):
        sub = node.get(key, {})
        if not isinstance(sub, Mapping):
            raise ConfigError(f"transfer.{key}", sub, "a mapping of training settings")
        dataclass_call_check(Recipe, sub, f"transfer.{key}")
        for required in ("epochs", "batch_size", "lr"):
            if required not in sub:
                raise ConfigError(f"transfer.{key}.{required}", "(missing)", "a value")
        recipes[key] = Recipe.from_cfg(sub)
    influence = node.get("influence", {})
    if not isinstance(influence, Mapping):
        raise ConfigError("transfer.influence", influence, "a mapping")
    dataclass_call_check(InfluenceSettings, influence, "transfer.influence")
    settings = TransferSettings(target=node["target"], classes=node.get("classes", "given"),
                                influence=InfluenceSettings(**influence), **recipes)
    num_classes = int(plan.cfg["dataset"]["num_classes"])
    if settings.classes == "influence" and settings.influence.drop >= num_classes:
        raise ConfigError("transfer.influence.drop", settings.influence.drop,
                          f"an integer in [1, {num_classes - 1}] (the source has "
                          f"{num_classes} classes)")
    target = _target_dataset(node["target"], dataset_dir, plan.allow)
    plan.cfg["transfer"] = dict(node)
    return TransferPlan(plan, settings, target, config_hash(plan.cfg))


def check_with_data(plan: Plan, env: TrainEnv) -> None:
    """Checks that need the loaded data and split (counts against the dataset size, the
    model against the image shape, a scenario's data transform against the images)."""
    scenario = plan.cfg["scenario"]["name"]
    if plan.runner.forgets_classes and not env.split.forget_classes:
        raise NotApplicable("scenario", scenario,
                            f"classwise (method={plan.method} forgets whole classes)")
    transform = env.split.transform
    if transform is not None:
        if not getattr(plan.task, "transforms_data", False):
            raise ConfigError("scenario", scenario, "a scenario that only selects samples "
                              f"(task={plan.task.name} cannot change its training data)")
        transform.check(env.data)  # e.g. a backdoor trigger that fits the images
    task_check = getattr(plan.task, "check_with_data", None)
    if task_check is not None:  # the task's own checks (a generator against its images)
        task_check(plan.cfg, env)
    else:
        _check_model_fits(plan, env)
    for producer in [*plan.stacked, plan.variant]:
        check = getattr(producer, "check", None)
        if check is not None:
            check(env)


def user_error_line(exc: UserError) -> str:
    return " ".join(str(exc).split())



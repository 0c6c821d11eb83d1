r"""`unlearnbench-tune`: the tuning protocol (README "Tuning"; DESIGN.md "Fair comparison").

    unlearnbench-tune method=ft dataset=digits scenario=classwise
    unlearnbench-tune 'method=glob(*)' dataset=digits,fashion_mnist scenario=classwise,random

One Optuna study per method x dataset x model x scenario. Each study is one Hydra multirun of
the ordinary job config (`unlearnbench -m`, so every override works) with Hydra's Optuna
sweeper (seeded TPE) over the method's search space ``conf/tune/<method>.yaml``, scored on the
validation split (``validation=tune.validation``: the test set is never read), averaged over
``tune.seeds`` seeds (``runner.trial_seeds``), with the cost cap ``tune.max_cost`` on every seed
(see ``runner.objective``). ``tune.trials`` trials per study, the same
for every method. The study's folder ``tune.dir/<dataset>_<model>_<scenario>_<method>`` holds
its trial jobs and ``optuna.db`` (SQLite): a killed run resumes and runs only the trials that
are missing. At the end of each study the selected trial (smallest validation avg_gap among
the feasible ones) is written to ``conf/tuned/<study>.yaml`` with every trial in
``conf/tuned/<study>.csv``; ``conf/config.yaml`` picks that file up for jobs of the setting.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob
from hydra.errors import HydraException

from . import schema, sweep
from .errors import ConfigError, UserError
from .params import dataclass_call_check
from .sweep import register_resolvers
from .validation import DEFAULT_TASKS, TuneSettings, resolved, serves_task

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
PROG = "unlearnbench-tune"
AXES = ("method", "dataset", "model", "scenario")  # one study per combination
PROTOCOL = "protocol.json"  # in the study folder: what its trials were run with
COMPLETE, INTERRUPTED = "COMPLETE", "interrupted"


# Where the validation split comes from (tasks.job_data): held out of D_r after D_f is drawn,
# so trials forget the test run's D_f. Recorded in each study and tuned file; a study tuned
# with the earlier order (validation out of the whole training set first) is not resumed.
VALIDATION_FROM = "retain"

OBJECTIVE_METRICS = ("accuracy", "mia")   # the eval metrics behind avg_gap (UA, RA, TA, MIA)


@dataclass(frozen=True)
class Study:
    """One method x dataset x model x scenario to tune, and the settings it runs with."""

    method: str
    dataset: str
    model: str
    scenario: str
    overrides: tuple[str, ...]   # the rest of the command line, passed to every trial
    space: dict[str, str]        # hydra.sweeper.params of conf/tune/<method>.yaml
    tune: dict[str, Any]         # the resolved `tune` node
    code: str = ""               # sha256 of the method's module and YAML
    target: str = ""             # the method's _target_ (to take the digest again)
    unread: tuple[str, ...] = ()  # eval metrics the objective never reads: off in trials
    inapplicable: str = ""        # why the method cannot run in this setting ('' if it can)

    @property
    def name(self) -> str:
        return f"{self.dataset}_{self.model}_{self.scenario}_{self.method}"

    @property
    def folder(self) -> Path:
        return Path(self.tune["dir"]) / self.name

    @property
    def storage(self) -> str:
        return f"sqlite:///{(self.folder / 'optuna.db').resolve()}"

    @property
    def tuned_dir(self) -> Path:
        return Path(self.tune["tuned_dir"] or CONF_DIR / "tuned")

    def protocol(self) -> dict[str, Any]:
        """Everything a trial's value depends on (the trial count aside: raising it extends
        a finished study)."""
        return {"method": self.method, "dataset": self.dataset, "model": self.model,
                "scenario": self.scenario,
                "overrides": sorted(o for o in self.overrides if not o.startswith("tune.")),
                "space": self.space, "validation": self.tune["validation"],
                "validation_from": VALIDATION_FROM, "max_cost": self.tune["max_cost"],
                "seed": self.tune["seed"], "seeds": self.tune["seeds"],
                "method_code": self.code}


# -- which studies a command line asks for

def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _axis_values(override: Any, group: str) -> list[str]:
    if not override.is_sweep_override():
        return [override.get_value_element_as_str()]
    value = override.value()
    if isinstance(value, Glob):
        return value.filter(_options(group))
    if override.is_discrete_sweep():
        return list(override.sweep_string_iterator())
    raise UserError(f"{override.input_line}: {group} takes a name, a list (a,b) or glob(...)")


def plan_studies(argv: Sequence[str]) -> tuple[list[Study], list[str]]:
    """The studies the command line describes, and a note for each method without a search
    space (nothing to tune)."""
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(list(argv))
    except HydraException as exc:
        raise UserError(" ".join(str(exc).split())) from None
    axes: dict[str, list[str]] = {}
    rest: list[str] = []
    for o in parsed:
        key = o.get_key_element()
        if key in AXES:
            axes[key] = _axis_values(o, key)
        elif o.is_sweep_override():
            raise UserError(f"{o.input_line}: only {', '.join(AXES)} may list several values "
                            "(the search space is conf/tune/<method>.yaml)")
        elif key.startswith("hydra") or key in ("validation", "tune"):
            raise ConfigError(key, o.get_value_element_as_str(),
                              "not on the tuner's command line: it sets hydra.*, validation "
                              "and tune itself (tune.trials, tune.max_cost, tune.validation, ...)")
        else:
            rest.append(o.input_line)
    register_resolvers()
    GlobalHydra.instance().clear()
    studies, notes, skipped = [], [], []
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            base = compose("config", overrides=rest, return_hydra_config=True)
            choices = base.hydra.runtime.choices
            for group in AXES:
                axes.setdefault(group, [str(choices[group])])
                unknown = [v for v in axes[group] if v not in _options(group)]
                if unknown or not axes[group]:
                    raise ConfigError(group, ",".join(unknown) or "(none)",
                                      ", ".join(_options(group)))
            for method in axes["method"]:
                if not (CONF_DIR / "tune" / f"{method}.yaml").is_file():
                    notes.append(f"{method}: no search space (conf/tune/{method}.yaml): "
                                 "nothing to tune")
                    continue
                for dataset in axes["dataset"]:
                    for model in axes["model"]:
                        for scenario in axes["scenario"]:
                            study = _study(method, dataset, model, scenario, rest)
                            if study.inapplicable:
                                skipped.append(study.inapplicable)
                            else:
                                studies.append(study)
        if skipped and not studies:  # asked for nothing but inapplicable combinations
            raise UserError(skipped[0])
        notes.extend(f"skipped {s}" for s in dict.fromkeys(skipped))  # once per setting
    except HydraException as exc:
        raise UserError(" ".join(str(exc).split())) from None
    finally:
        GlobalHydra.instance().clear()
    return studies, notes


def _study(method: str, dataset: str, model: str, scenario: str, rest: list[str]) -> Study:
    cfg = compose("config", overrides=[f"+tune={method}", f"method={method}",
                                       f"dataset={dataset}", f"model={model}",
                                       f"scenario={scenario}", *rest],
                  return_hydra_config=True)
    space = {str(k): str(v) for k, v in (cfg.hydra.sweeper.params or {}).items()}
    plain = resolved(cfg)
    dataclass_call_check(TuneSettings, plain["tune"], "tune")
    # avg_gap reads UA, RA, TA and MIA only: the other metrics (model inversion alone costs
    # ~45 s a trial on Fashion-MNIST) would not change a trial's value, only its wall time
    unread = tuple(sorted(name for name, spec in (plain["eval"]["metrics"] or {}).items()
                          if spec is not None and name not in OBJECTIVE_METRICS))
    return Study(method, dataset, model, scenario, tuple(rest), space, dict(plain["tune"]),
                 method_code(method, str(plain["method"]["_target_"])),
                 str(plain["method"]["_target_"]), unread, _inapplicable(method, plain))


def _inapplicable(method: str, plain: Mapping[str, Any]) -> str:
    """Why ``method`` cannot run in the setting ``plain`` ('' if it can): a glob over methods
    or a list of scenarios skips these with a note instead of failing a trial."""
    runner = plain["method"].get("runner") or {}
    task, scenario = plain["task"]["name"], plain["scenario"]["name"]
    if not serves_task(runner.get("tasks"), runner.get("same_as_role"), task):
        tasks = runner.get("tasks") or DEFAULT_TASKS
        return f"{method} on task={task}: not applicable (allowed: {', '.join(tasks)})"
    if runner.get("forgets_classes") and scenario != "classwise":
        return (f"{method} on scenario={scenario}: not applicable (it forgets whole classes; "
                "allowed: classwise)")
    return ""


def method_code(method: str, target: str) -> str:
    """A digest of the method's source and YAML: a study of an older version of the method
    is not resumed (its trials measured other code)."""
    spec = importlib.util.find_spec(target.rpartition(".")[0])
    source = Path(spec.origin).read_bytes() if spec and spec.origin else b""
    yaml_text = (CONF_DIR / "method" / f"{method}.yaml").read_bytes()
    return hashlib.sha256(source + b"\0" + yaml_text).hexdigest()


# -- running a study

def _trials(study: Study) -> list[Any]:
    """The study's trials so far ([] before its first); trials a kill left running are
    marked failed (they never told a value)."""
    import optuna

    if not (study.folder / "optuna.db").exists():
        return []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        loaded = optuna.load_study(study_name=study.name, storage=study.storage)
    except KeyError:  # the database exists but the study was never created in it
        return []
    for trial in loaded.get_trials(deepcopy=False):
        if trial.state == optuna.trial.TrialState.RUNNING:
            loaded._storage.set_trial_state(trial._trial_id, optuna.trial.TrialState.FAIL)
    return loaded.get_trials()


def _check_protocol(study: Study) -> None:
    """A study folder serves one protocol: a rerun with other settings is one line."""
    path = study.folder / PROTOCOL
    wanted = study.protocol()
    if path.exists():
        stored = json.loads(path.read_text())
        stored.setdefault("seeds", 1)  # written before trials averaged over seeds
        if stored != wanted:
            diff = sorted(k for k in wanted.keys() | stored.keys()
                          if wanted.get(k) != stored.get(k))
            raise UserError(f"{study.folder} holds a study with other settings (differs in: "
                            f"{', '.join(diff)}; method_code: the method's source or YAML "
                            "changed); delete that folder to tune afresh")
        return
    study.folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2) + "\n")


def _die_with_parent() -> None:
    """The trial process ends when the tuner does, even on SIGKILL (Linux)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def command(study: Study, trials: int, started: int) -> list[str]:
    """The Hydra multirun of ``trials`` more trials: the ordinary job config with the
    method's search space, the validation split and Optuna's sweeper. The sampler's seed is
    offset by the trials ``started`` before, so a resumed study draws new points."""
    return [sys.executable, "-m", "unlearnbench.cli", "-m", f"+tune={study.method}",
            f"method={study.method}", f"dataset={study.dataset}", f"model={study.model}",
            f"scenario={study.scenario}", *study.overrides, "~tuned", "progress=false",
            f"validation={study.tune['validation']}", "tune.stop_at_max_cost=true",
            "hydra/sweeper=optuna",
            f"hydra.sweeper.n_trials={trials}", "hydra.sweeper.n_jobs=1",
            "hydra.sweeper.direction=minimize", f"hydra.sweeper.study_name={study.name}",
            f"hydra.sweeper.storage='{study.storage}'",
            f"hydra.sweeper.sampler.seed={int(study.tune['seed']) + started}",
            f"hydra.sweep.dir='{study.folder.resolve()}'", "~hydra.callbacks.sweep_summary",
            *(f"eval.metrics.{name}=null" for name in study.unread)]


def run_study(study: Study) -> dict[str, Any]:
    """Run the trials the study still lacks, then write its tuned file and trial table."""
    if study.target:  # the code as its trials will import it (a long queue of studies may
        study = replace(study, code=method_code(study.method, study.target))  # see edits)
    _check_protocol(study)
    before = _trials(study)
    done = sum(t.state.name == COMPLETE for t in before)
    missing = int(study.tune["trials"]) - done
    state_path = study.folder / "elapsed.json"
    elapsed = json.loads(state_path.read_text())["seconds"] if state_path.exists() else 0.0
    if missing > 0:
        print(f"{PROG}: {study.name}: {done} of {study.tune['trials']} trials done, "
              f"running {missing}", flush=True)
        start = time.monotonic()
        try:
            proc = subprocess.run(command(study, missing, len(before)),
                                  preexec_fn=_die_with_parent)
        finally:
            elapsed += time.monotonic() - start
            state_path.write_text(json.dumps({"seconds": round(elapsed, 1)}) + "\n")
        if proc.returncode != 0:
            raise SystemExit(proc.returncode)
    table = trial_table(study, _trials(study))
    return write_tuned(study, table, elapsed)


# -- the trial table and the tuned file

def _unlearned_row(job: Path) -> dict[str, Any] | None:
    rows = pd.read_csv(job / "metrics.csv")
    unlearned = rows[rows.role == "unlearned"]
    return unlearned.iloc[0].to_dict() if len(unlearned) else None


def _seed_mean(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One trial's row from its seeds' rows: the validation metrics averaged, the largest cost
    (the cap holds for every seed), failed when any seed failed."""
    failed = next((r for r in rows if r.get("status") != "ok"), None)
    if failed is not None:
        return failed
    out = dict(rows[-1])
    for key in (schema.AVG_GAP, "UA", "RA", "TA", "MIA", "RTE_s"):
        out[key] = math.fsum(float(r[key]) for r in rows) / len(rows)
    out["cost_ratio"] = max(schema.cost_ratio(r) for r in rows)
    out["seeds"] = len(rows)
    out["avg_gap_by_seed"] = " ".join(f"{float(r[schema.AVG_GAP]):.3f}" for r in rows)
    return out


def _job_rows(folder: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(config, unlearned row) of every finished trial job in the study folder; the row of a
    trial over several seeds is their mean (``_seed_mean``), its own seed's job last."""
    out = []
    for done in sorted(folder.glob(f"*/{schema.DONE}")):
        job = done.parent
        cfg = yaml.safe_load((job / "config.yaml").read_text()) or {}
        rows = [_unlearned_row(j) for j in (*sweep.seed_folders(job), job)
                if (j / schema.DONE).exists()]
        if rows and all(r is not None for r in rows):
            out.append((cfg, _seed_mean([r for r in rows if r is not None])))
    return out


def _select(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return str(a) == str(b)


def trial_table(study: Study, trials: list[Any]) -> pd.DataFrame:
    """Every trial: its parameters, validation metrics and avg_gap, cost ratio, feasibility.
    A trial's job is found by its parameters (identical parameters share one job)."""
    jobs = _job_rows(study.folder)
    max_cost = float(study.tune["max_cost"])
    rows = []
    for trial in trials:
        params = {k.removeprefix("method."): v for k, v in trial.params.items()}
        row: dict[str, Any] = {"trial": trial.number, **params}
        match = next((r for cfg, r in jobs
                      if all(_same(_select(cfg, k), v) for k, v in trial.params.items())), None)
        state = trial.state.name if trial.state.name == COMPLETE else INTERRUPTED
        ok = match is not None and match.get("status") == "ok"
        row.update({
            "state": state,
            "status": match.get("status") if match is not None else "",
            "val_avg_gap": float(match[schema.AVG_GAP]) if ok else math.nan,
            **{f"val_{m}": float(match[m]) if ok else math.nan
               for m in ("UA", "RA", "TA", "MIA")},
            "seeds": int(match.get("seeds", 1)) if ok else 0,
            "val_avg_gap_by_seed": str(match.get("avg_gap_by_seed", "")) if ok else "",
            "RTE_s": float(match["RTE_s"]) if ok else math.nan,
            "cost_ratio": schema.cost_ratio(match) if ok else math.nan,
            "feasible": bool(ok and schema.within_budget(match, max_cost)),
            "objective": trial.value if state == COMPLETE else math.nan,
            "reason": "" if match is None or ok else str(match.get("reason", "")),
        })
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    finite = table[(table.state == COMPLETE) & table.objective.map(math.isfinite)]
    table["selected"] = False
    if len(finite):
        best = finite.sort_values(["objective", "trial"]).index[0]
        table.loc[best, "selected"] = True
    return table


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, for YAML."""
    return value.item() if hasattr(value, "item") else value


def write_tuned(study: Study, table: pd.DataFrame, elapsed: float) -> dict[str, Any]:
    """``<tuned_dir>/<study>.yaml`` (the selected hyperparameters, merged into ``method``, and
    where they came from under ``method.runner.tuned``) and ``<study>.csv`` (every trial)."""
    out = study.tuned_dir
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{study.name}.csv", index=False)
    keys = [k.removeprefix("method.") for k in study.space]
    complete = table[table.state == COMPLETE] if len(table) else table
    tuned: dict[str, Any] = {
        "file": f"conf/tuned/{study.name}.yaml", "trials": int(len(complete)),
        "feasible": int(complete.feasible.sum()) if len(complete) else 0,
        "validation": study.tune["validation"], "validation_from": VALIDATION_FROM,
        "max_cost": study.tune["max_cost"], "sampler": "TPE", "seed": study.tune["seed"],
        "seeds": study.tune["seeds"],
        "seconds": round(elapsed, 1),
        "code": study.code,  # the method's source + YAML digest the trials measured
    }
    best = table[table.selected] if len(table) else table
    node: dict[str, Any] = {}
    if len(best):
        pick = best.iloc[0]
        params = {k: _plain(pick[k]) for k in keys}
        tuned.update({"trial": int(pick.trial), "objective": float(pick.objective),
                      "params": params})
        node.update(params)
    node["runner"] = {"tuned": tuned}
    words = " ".join(f"{a}={getattr(study, a)}" for a in AXES)
    header = (f"# @package method\n# Tuned hyperparameters for {words}: written by\n"
              f"#   {PROG} {words}{''.join(' ' + o for o in study.overrides)}\n"
              f"# (README \"Tuning\"). Every trial: {study.name}.csv beside this file. "
              "An override on the\n# command line wins; `~tuned` runs the plain defaults.\n")
    (out / f"{study.name}.yaml").write_text(header + yaml.safe_dump(node, sort_keys=False))
    return tuned


def _summary(study: Study, tuned: dict[str, Any]) -> str:
    head = (f"{study.name}: {tuned['trials']} trials ({tuned['feasible']} feasible) in "
            f"{tuned['seconds']:.0f} s")
    if "params" not in tuned:
        return f"{head}; no feasible trial: plain defaults stay"
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in tuned["params"].items())
    return (f"{head}; trial {tuned['trial']}: {params}, validation avg_gap "
            f"{tuned['objective']:.2f} -> {study.tuned_dir / study.name}.yaml")


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: `unlearnbench-tune [method=...] [dataset=...] [overrides]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    try:
        studies, notes = plan_studies(argv)
        for note in notes:
            print(f"{PROG}: {note}")
        if not studies:
            raise UserError("nothing to tune: no method with a search space in conf/tune/")
        results = []
        for study in studies:
            tuned = run_study(study)
            results.append(_summary(study, tuned))
            print(f"{PROG}: {results[-1]}", flush=True)
    except UserError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        return int(exc.code or 1)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    if len(results) > 1:
        print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

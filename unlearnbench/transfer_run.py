"""`unlearnbench-transfer`: unlearn source classes, then transfer to a target dataset.

One job = the benchmark job on the source (original, retrain without the classes, the method's
unlearned model; the usual rows and columns) plus, for each of the three models, a linear
probe and a full fine-tune on the target dataset (``probe_TA``, ``probe_s``, ``finetune_TA``,
``finetune_s`` columns). Which classes: ``scenario.forget_classes`` (``transfer.classes:
given``) or the most harmful ones by Jain et al.'s class influence (``influence``), estimated
from source models trained on random halves of the classes (cached like any retrain: each is
the retrain of a class-wise job whose forget set is the other half).

Plain Python, callable from tests without Hydra: ``run_transfer(cfg, out_dir)``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig
from rich.console import Console
from torch import nn

from . import cli, sweep
from .cache import canonical_json
from .data import Data, load_data
from .errors import ConfigError, DatasetMissingError
from .preflight import DataCache, check_paths, check_plan_with_data
from .references import Reference
from .results import make_console
from .runner import Prepared, prepare, run
from .tasks.classification import Classification
from .transfer import (
    class_influence,
    class_subsets,
    fine_tune,
    fit_to_source,
    linear_probe,
    most_harmful,
)
from .validation import TransferPlan, validate, validate_transfer

DATASET_DIR = cli.CONF_DIR / "dataset"


def load_target(tplan: TransferPlan, source_shape: tuple[int, int, int],
                cache: DataCache | None = None) -> Data:
    """The target dataset, resized to the source's input shape; missing files are one line
    naming ``transfer.target``."""
    root = tplan.plan.cfg["data_root"]
    try:
        data = cache.load(tplan.target, root) if cache else load_data(tplan.target, root)
    except DatasetMissingError as exc:
        raise ConfigError("transfer.target", tplan.settings.target,
                          f"a dataset whose files are present ({exc})") from None
    return fit_to_source(data, source_shape)


def check_transfer_job(cfg: Any, data: DataCache) -> None:
    """Preflight of one `unlearnbench-transfer` job: every key, both datasets' files."""
    tplan = validate_transfer(cfg, DATASET_DIR)
    check_paths(cfg)
    check_plan_with_data(tplan.plan, data)
    load_target(tplan, data.get(tplan.plan).input_shape, data)


def _source_cfg(tplan: TransferPlan, **changes: Any) -> dict[str, Any]:
    """The source job's config without the `transfer` node, with ``changes`` applied
    (``scenario`` entries are merged into the scenario node)."""
    cfg = {k: v for k, v in tplan.plan.cfg.items() if k != "transfer"}
    scenario = {**cfg["scenario"], **changes.pop("scenario", {})}
    return {**cfg, **changes, "scenario": scenario}


class Transfer:
    """The job extension: probe and fine-tune every model of the job on the target."""

    def __init__(self, tplan: TransferPlan, target: Data, influence: list[dict[str, Any]]
                 ) -> None:
        self.tplan, self.target, self.influence = tplan, target, influence

    def scores(self, model: nn.Module, seed: int, progress: bool) -> dict[str, float]:
        settings = self.tplan.settings
        probe_ta, probe_s = linear_probe(model, self.target, settings.probe, seed, progress)
        tune_ta, tune_s = fine_tune(model, self.target, settings.finetune, seed, progress)
        return {"probe_TA": probe_ta, "probe_s": probe_s, "finetune_TA": tune_ta,
                "finetune_s": tune_s}

    def memoised(self, job: Prepared, ref: Reference, seed: int) -> dict[str, float]:
        """A reference's scores, memoised beside its weights (every method of a sweep
        transfers the same original and retrain)."""
        material = {"transfer_of": ref.key, "weights_sha256": ref.weights_sha256,
                    "target": canonical_json(self.tplan.target),
                    "settings": canonical_json(asdict(self.tplan.settings)), "seed": seed}
        return job.refs.cache.memo(material, lambda: self.scores(ref.model, seed,
                                                                 job.env.progress),
                                   tied_to=ref.weights_sha256)

    def columns(self, job: Prepared, models: Mapping[str, nn.Module]
                ) -> dict[str, dict[str, Any]]:
        seed = job.plan.seed
        common = {"target": self.tplan.settings.target,
                  "dropped_classes": " ".join(map(str, job.env.split.forget_classes))}
        out = {}
        for role, model in models.items():
            scores = (self.memoised(job, job.refs.get(role), seed) if role != "unlearned"
                      else self.scores(model, seed, job.env.progress))
            out[role] = {**common, **scores}
            job.console.print(f"transfer to {common['target']} ({role}): linear probe "
                              f"{scores['probe_TA']:.2f}% in {scores['probe_s']:.1f}s, "
                              f"fine-tune {scores['finetune_TA']:.2f}% in "
                              f"{scores['finetune_s']:.1f}s")
        return out

    def files(self) -> dict[str, str]:
        if not self.influence:
            return {}
        text = io.StringIO()
        pd.DataFrame(self.influence).to_csv(text, index=False)
        return {"class_influence.csv": text.getvalue()}


def select_classes(tplan: TransferPlan, source: Data, target: Data, console: Console
                   ) -> tuple[tuple[int, ...], list[dict[str, Any]]]:
    """The ``drop`` most harmful source classes by class influence (Jain et al. 2022): source
    models trained on random class subsets (each the cached retrain of a class-wise job that
    forgets the other classes), scored by the target linear probe."""
    settings = tplan.settings.influence
    k = source.num_classes
    subsets = class_subsets(k, settings)
    quiet = Console(quiet=True)
    scores = []
    for i, subset in enumerate(subsets):
        others = [c for c in range(k) if c not in subset]
        cfg = _source_cfg(tplan, seed=settings.seed, scenario={"forget_classes": others})
        job = prepare(validate(cfg), quiet, source)
        ref = job.refs.get("retrain")
        score = Transfer(tplan, target, []).memoised(job, ref, settings.seed)["probe_TA"]
        scores.append(score)
        console.print(f"class influence: model {i + 1}/{len(subsets)} on classes "
                      f"{list(subset)}: target linear probe {score:.2f}%")
    influence = class_influence(subsets, scores, k)
    chosen = most_harmful(influence, settings.drop)
    ranked = ", ".join(f"{r['class']}: {r['influence']:+.2f}"
                       for r in sorted(influence, key=lambda r: r["influence"]))
    console.print(f"class influence on the target (points): {ranked}; dropping {list(chosen)}")
    return chosen, influence


def run_transfer(cfg: DictConfig | Mapping[str, Any], out_dir: str | Path | None = None,
                 console: Console | None = None) -> pd.DataFrame:
    """One transfer job: validate, pick the classes, run the source job with the transfer
    extension; the rows of the original, the retrain and the unlearned model."""
    console = console or make_console()
    tplan = validate_transfer(cfg, DATASET_DIR)
    source = load_data(tplan.plan.cfg["dataset"], tplan.plan.cfg["data_root"])
    device = tplan.plan.device
    target = load_target(tplan, source.input_shape).to(device)
    plan, influence = tplan.plan, []
    if tplan.settings.classes == "influence":
        chosen, influence = select_classes(tplan, source, target, console)
        plan = validate(_source_cfg(tplan, scenario={"forget_classes": list(chosen)}))
        plan.cfg["transfer"] = tplan.plan.cfg["transfer"]
    return run(plan, out_dir, console, extension=Transfer(tplan, target, influence),
               config_hash=tplan.config_hash, data=source)


def run_transfer_job(cfg: DictConfig, out_dir: Path) -> float:
    """One job of the console command; its objective for a sweeper (the unlearned row's
    avg_gap on the source, as the benchmark's)."""
    return _transfer_objective(run_transfer(cfg, out_dir))


def stored_transfer(cfg: DictConfig, job_dir: Path) -> float:
    """A finished transfer job's objective, from its metrics.csv, by run_transfer_job's rule."""
    return sweep.stored_score(job_dir / "metrics.csv", _transfer_objective)


def _transfer_objective(rows: pd.DataFrame) -> float:
    unlearned = rows[rows.role == "unlearned"]
    return Classification.objective(unlearned.iloc[0].to_dict()) if len(unlearned) else math.inf


def main() -> None:
    """Console entry point: `unlearnbench-transfer [overrides]` (conf/transfer.yaml)."""
    cli.main(cli.Command("unlearnbench-transfer", "transfer", run_transfer_job,
                         stored_transfer, check_transfer_job))


if __name__ == "__main__":
    main()

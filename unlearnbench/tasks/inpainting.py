"""`task=inpainting`: image-to-image generative unlearning (Li et al., ICLR 2024).

Generators (``model=mae|vqgan|ddpm``) fill a masked region of 32x32 greyscale images; forget
and retain are classes (``scenario=classwise``). The same flow as classification: the cached
original (all classes) and retrain (retain classes only), a method on a copy of the original,
then every model's metrics in the feature space of a judge classifier (cached once per
dataset): FD, KID, IS and cos on held-out retain and forget images, the share of forget
inpaintings the judge recognises as a forget class, and a t-test p-value of per-image cosine,
each with its gap to the retrain; ``summary`` is the objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import schema
from ..context import CheckpointLog, TrainEnv
from ..data import Data
from ..errors import ConfigError, NotApplicable
from ..generative.data import region_mask, to_square, unit_range
from ..generative.evaluation import evaluate_generator
from ..generative.grid import grid_png, unlearning_columns
from ..generative.training import GeneratorRecipe
from ..params import OpenUnit, Range, check_call
from ..producers.generative import DenseGenerator, GeneratorJudge
from ..registry import resolve
from ..training import stopwatch
from .job_data import job_data

# A model config's keys that are not the generator's parameters.
MODEL_DESCRIPTOR_KEYS = ("_target_", "name", "recipe")
GRID_ROLES = ("original", "unlearned", "retrain")  # the paper's figure, left to right
SIDE = 32


def generator_class(cfg: Mapping[str, Any], allow: tuple[str, ...] = ()) -> Callable[..., Any]:
    return resolve(cfg.get("_target_"), "generator", "model._target_", allow)


def build_generator(cfg: Mapping[str, Any]) -> nn.Module:
    """The configured generator (its weights drawn from the current torch RNG)."""
    params = {k: v for k, v in cfg.items() if k not in MODEL_DESCRIPTOR_KEYS}
    return generator_class(cfg)(**params)


def square_images(data: Data) -> Data:
    """The dataset's images mapped back to [0, 1] and brought to 32x32 (padded, or upsampled
    for 8x8 digits), labels unchanged."""
    train_x, test_x = unit_range(data.train_x, data.test_x)
    return Data(name=data.name, train_x=to_square(train_x), train_y=data.train_y,
                test_x=to_square(test_x), test_y=data.test_y, num_classes=data.num_classes)


class Inpainting:
    """The inpainting task; its keys are the task node's (conf/task/inpainting.yaml)."""

    name = "inpainting"
    generative = True  # generative models and methods only (validation.py)
    columns = schema.GEN_COLUMNS
    shown = schema.GEN_SHOWN
    gap_metrics = schema.GEN_GAP_METRICS
    transforms_data = False
    model_descriptor_keys = MODEL_DESCRIPTOR_KEYS
    recipe_type = GeneratorRecipe

    def __init__(self, eval_cfg: Mapping[str, Any], allow: tuple[str, ...] = (), *,
                 mode: Literal["inpaint", "outpaint"] = "inpaint", box: OpenUnit = 0.5,
                 eval_images: Annotated[int, Range(2, 10**7)] = 1000,
                 steps: Annotated[int, Range(1, 1000)] | None = None,
                 grid_examples: Annotated[int, Range(1, 64)] = 4,
                 judge: Mapping[str, Any] | None = None) -> None:
        judge = dict(judge or {})
        check_call(GeneratorJudge, judge, "task.judge")
        self.judge = GeneratorJudge(**judge)
        self.mode, self.box, self.steps = mode, float(box), steps
        self.eval_images, self.grid_examples = eval_images, grid_examples
        self.mask = region_mask(self.box, mode, SIDE)
        self.seconds: dict[str, float] = {}

    # -- what the runner and the references ask of a task

    def base_producer(self) -> DenseGenerator:
        return DenseGenerator({"name": self.name, "side": SIDE})

    def judge_producer(self) -> GeneratorJudge:
        return self.judge

    def environment(self, cfg: Mapping[str, Any], device: torch.device,
                    log: Callable[[str], None], data: Data | None = None) -> TrainEnv:
        """The dataset at 32x32 in [0, 1] on the device, the class-wise split from the job's
        seed, the generator recipe; with ``validation`` > 0 the validation split replaces the
        test set (tuning)."""
        seed = int(cfg["seed"])
        data, split = job_data(cfg, data)
        model_cfg = dict(cfg["model"])
        return TrainEnv(data=square_images(data).to(device), split=split,
                        recipe=GeneratorRecipe.from_cfg(cfg["train"]),  # type: ignore[arg-type]
                        seed=seed, device=device,
                        model_factory=lambda shape, k: build_generator(model_cfg),
                        progress=bool(cfg["progress"]), log=log)

    def check_with_data(self, cfg: Mapping[str, Any], env: TrainEnv) -> None:
        """Greyscale images, a class-wise split, a proxy retain set other than the data, and a
        generator that inpaints the job's images (one line each, before training)."""
        dataset = cfg["dataset"]["name"]
        if env.data.input_shape[0] != 1:
            raise ConfigError("dataset", dataset, "a greyscale dataset for task=inpainting "
                              "(digits, mnist_5k, fashion_mnist, mnist)")
        if not env.split.forget_classes:
            raise NotApplicable("scenario", cfg["scenario"]["name"],
                                "classwise (task=inpainting forgets whole classes)")
        method = cfg["method"]
        if method.get("retain_source") == "proxy" and method.get("proxy") == dataset:
            raise ConfigError("method.proxy", method.get("proxy"),
                              f"a dataset other than dataset={dataset} (the proxy retain set)")
        state = torch.random.get_rng_state()
        try:
            model = env.build_model().eval()
            with torch.no_grad():
                model.generate(env.data.train_x[:2] * (1 - self.mask.to(env.device)),
                               self.mask.to(env.device).expand(2, -1, -1, -1),
                               torch.Generator().manual_seed(0), 1)
        except (RuntimeError, ValueError) as exc:
            why = " ".join(str(exc).split())[:200]
            raise ConfigError("model", cfg["model"]["name"], "a generator that takes 32x32 "
                              f"greyscale images ({type(exc).__name__}: {why})") from None
        finally:
            torch.random.set_rng_state(state)
        epochs = list(GeneratorRecipe.from_cfg(cfg["train"]).epochs)  # type: ignore[arg-type]
        if len(epochs) != len(model.stages):
            raise ConfigError("train.epochs", epochs, f"{len(model.stages)} value(s), one per "
                              f"stage {list(model.stages)} of model={cfg['model']['name']}")

    def _truth(self, env: TrainEnv) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``eval_images`` held-out images of the retain and the forget classes."""
        y = env.data.test_y
        is_forget = torch.isin(y.cpu(), torch.tensor(list(env.split.forget_classes))).to(y.device)
        x = env.data.test_x
        return x[~is_forget][: self.eval_images], x[is_forget][: self.eval_images]

    def evaluate(self, model: nn.Module, env: TrainEnv) -> dict[str, float]:
        """Inpaint the held-out retain and forget images (the same sampling seed for every
        model) and score them in the judge's feature space."""
        with stopwatch(env.device) as clock:
            judge = env.reference_model("judge")
            retain, forget = self._truth(env)
            result = evaluate_generator(model, judge, retain=retain, forget=forget,
                                        mask=self.mask.to(env.device),
                                        forget_classes=list(env.split.forget_classes),
                                        seed=0, steps=self.steps)
        self.seconds["generative"] = self.seconds.get("generative", 0.0) + clock["seconds"]
        if env.artifacts is not None:  # the grid's examples
            k = self.grid_examples
            env.artifacts.update({
                "truth_retain": retain[:k].cpu().numpy(), "truth_forget": forget[:k].cpu().numpy(),
                "inpaint_retain": result.retain[:k].cpu().numpy(),
                "inpaint_forget": result.forget[:k].cpu().numpy()})
        for name, value in result.row.items():
            if not math.isfinite(value) and name != "cos_pvalue":
                raise FloatingPointError(f"non-finite {name}")
        return result.row

    def compare(self, row: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float]:
        """Gaps to the retrain's metrics and ``summary`` (schema.SUMMARY_METRICS)."""
        out: dict[str, float] = {}
        for metric in self.gap_metrics:
            if metric in row and metric in reference:
                out[f"gap_{metric}"] = abs(float(row[metric]) - float(reference[metric]))
        if all(f"gap_{m}" in out for m in schema.SUMMARY_METRICS):
            out[schema.SUMMARY] = 100.0 * float(np.mean([out[f"gap_{m}"]
                                                         for m in schema.SUMMARY_METRICS]))
        return out

    def figures(self, artifacts: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, bytes]:
        """inpainting_grid.png: ground truth, input, original, unlearned, retrain; retain
        examples above forget examples."""
        roles = [r for r in GRID_ROLES if "inpaint_retain" in artifacts.get(r, {})]
        if not roles:
            return {}
        first = artifacts[roles[0]]
        generated = {role: (torch.from_numpy(artifacts[role]["inpaint_retain"]),
                            torch.from_numpy(artifacts[role]["inpaint_forget"]))
                     for role in roles}
        columns, labels = unlearning_columns(self.mask, torch.from_numpy(first["truth_retain"]),
                                             torch.from_numpy(first["truth_forget"]), generated)
        return {"inpainting_grid.png": grid_png(columns, labels)}

    def curve(self, checkpoints: CheckpointLog, env: TrainEnv) -> pd.DataFrame:
        """The generative methods hand over no checkpoints: no learning curve."""
        return pd.DataFrame()

    def test_accuracy(self, models: Mapping[str, Any], env: TrainEnv) -> dict[str, float]:
        return {}

    @staticmethod
    def objective(row: Mapping[str, Any]) -> float:
        """What a tuner minimises: the unlearned row's summary gap (inf when it failed)."""
        value = row.get(schema.SUMMARY, math.nan)
        if row.get("status") != "ok" or value is None or not math.isfinite(float(value)):
            return math.inf
        return float(value)


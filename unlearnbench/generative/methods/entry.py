"""What the generative methods' `unlearn(model, ctx, ...)` entry points share (the runner's
method protocol, as the classification methods): the forget and retain images of the method's
context, the recipe from the reference's plus the YAML's overrides, the result with extras.

Recipe keys left null in a method's YAML keep the reference's value for the model's family
(unlearning.REFERENCE_RECIPES); ``max_forget`` caps the forget images per run, as the
references unlearn on a subset (100-120 images per forget class)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Annotated, Any, Literal

import torch

from ...context import MethodContext
from ...methods.base import MethodOutput
from ...params import BatchSize, Epochs, LearningRate, PositiveInt, Range
from ..base import InpaintingModel
from ..data import to_square, unit_range
from ..unlearning import UnlearnRecipe, reference_recipe

Alpha = Annotated[float, Range(0, 1000, low_open=True)]
MaxForget = Annotated[int, Range(2, 10**9)]
# Embedded greyscale datasets (no download) that can stand in for the retain set.
PROXIES: dict[str, dict[str, Any]] = {
    "mnist_5k": {"_target_": "unlearnbench.data.mnist_5k", "name": "mnist_5k",
                 "num_classes": 10, "test_fraction": 0.2, "split_seed": 0},
    "digits": {"_target_": "unlearnbench.data.digits", "name": "digits", "num_classes": 10,
               "test_fraction": 0.25, "split_seed": 0},
}
Proxy = Literal["mnist_5k", "digits"]
RetainSource = Literal["real", "proxy"]

__all__ = ["Alpha", "BatchSize", "Epochs", "LearningRate", "MaxForget", "PositiveInt", "Proxy",
           "RetainSource", "images", "run_method"]


def proxy_images(name: str) -> torch.Tensor:
    """The proxy dataset's training images at the task's size, in [0, 1]."""
    from ...data import load_data

    data = load_data(PROXIES[name], "data")
    (train_x,) = unit_range(data.train_x)
    return to_square(train_x)


def images(ctx: MethodContext, retain_source: str = "real",
           proxy: str = "mnist_5k") -> tuple[torch.Tensor, torch.Tensor]:
    """(forget images, retain images) for the method; with ``retain_source=proxy`` the retain
    images come from another dataset (the paper's open-data retain set)."""
    x = ctx.data.train_x
    forget = x[ctx.split.forget.to(x.device)]
    if retain_source == "proxy":
        return forget, proxy_images(proxy).to(x.device)
    return forget, x[ctx.split.retain.to(x.device)]


def run_method(model: InpaintingModel, ctx: MethodContext, kind: str,
               run: Callable[..., dict[str, float]], *, epochs: int | None, lr: float | None,
               batch_size: int | None, max_forget: int | None, retain_source: str = "real",
               proxy: str = "mnist_5k", **hyper: Any) -> MethodOutput:
    """Unlearn ``model`` (a copy of the original) in place with ``run`` (a method of this
    package), the frozen original being a second copy of it."""
    original = copy.deepcopy(model)
    forget_x, retain_x = images(ctx, retain_source, proxy)
    recipe: UnlearnRecipe = reference_recipe(model, kind, epochs=epochs, lr=lr,
                                             batch_size=batch_size, max_forget=max_forget)
    info = run(model, original, forget_x, retain_x, recipe=recipe, seed=ctx.seed,
               device=ctx.device, progress=ctx.progress, **hyper)
    return MethodOutput(model.eval(), extras={"final_loss": info["final_loss"],
                                              "steps": info["steps"]})

"""The one training loop shared by the original, the retrain and every method that fine-tunes."""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from .params import (
    BatchSize,
    Epochs,
    LearningRate,
    Momentum,
    NonNegativeFloat,
    NonNegativeInt,
    Range,
)


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss: the method's row is marked failed."""


@dataclass(frozen=True)
class Recipe:
    """The SGD recipe of the original and the retrain (the `train` config group); fine-tuning
    methods reuse its batch size, momentum, weight decay and augmentation. Field annotations
    are the allowed values (checked by the validation layer)."""

    epochs: Epochs
    batch_size: BatchSize
    lr: LearningRate
    momentum: Momentum = 0.9
    weight_decay: NonNegativeFloat = 5e-4
    scheduler: Literal["cosine", "multistep", "constant"] = "cosine"
    milestones: tuple[NonNegativeInt, ...] = ()
    gamma: Annotated[float, Range(0, 1, low_open=True)] = 0.1
    augment: bool = False

    @classmethod
    def from_cfg(cls, cfg: Any, **overrides: Any) -> Recipe:
        fields = {k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg}
        fields.update(overrides)
        fields["milestones"] = tuple(fields.get("milestones", ()))
        return cls(**fields)

    def lr_at(self, epoch_progress: float) -> float:
        """Learning rate at a fractional epoch."""
        if self.scheduler == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * epoch_progress / max(self.epochs, 1)))
        if self.scheduler == "multistep":
            passed = sum(epoch_progress >= m for m in self.milestones)
            return self.lr * self.gamma**passed
        return self.lr


class StepObserver(Protocol):
    """Watches each optimiser step; used by methods that record or constrain training."""

    def before_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None: ...

    def after_step(self, batch_indices: torch.Tensor, model: nn.Module) -> None: ...


Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Regulariser = Callable[[nn.Module, float], torch.Tensor]
# One epoch's batches in order, each (row indices into x, their labels); called with the epoch
# number and the loop's generator at the start of every epoch.
EpochPlan = Callable[[int, torch.Generator], list[tuple[torch.Tensor, torch.Tensor]]]


@dataclass
class FitOptions:
    objective: Objective = F.cross_entropy
    regulariser: Regulariser | None = None  # (model, progress in [0, 1]) -> penalty
    observers: list[StepObserver] = field(default_factory=list)
    desc: str = "train"
    progress: bool = True
    epoch_plan: EpochPlan | None = None  # default: shuffled_batches(indices, y, batch size)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU runs stay fp32 and deterministic)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to the device; channels_last on CUDA for faster convolutions."""
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def stopwatch(device: torch.device) -> Iterator[dict[str, float]]:
    """Wall-clock seconds of the block, with the device synchronised at both ends, and the
    process's CPU seconds (all threads), which other processes on the machine barely change."""
    result: dict[str, float] = {}
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        sync(device)
        result["seconds"] = time.perf_counter() - start
        result["cpu_seconds"] = time.process_time() - cpu


class OverBudget(RuntimeError):
    """A step used more CPU time than it was allowed (a tuning trial over ``tune.max_cost``)."""


@contextlib.contextmanager
def cpu_budget(seconds: float | None) -> Iterator[None]:
    """Raise :class:`OverBudget` inside the block once the process has spent ``seconds`` more
    CPU time (SIGPROF counts user + system time of every thread). No limit with ``None``, and
    where signals cannot be used (not the main thread, no setitimer).

    The stop is a signal and lands between any two bytecodes, e.g. inside
    ``torch.no_grad().__enter__`` after it switched autograd off, whose ``__exit__`` then never
    runs; so the grad mode the block started with is restored on the way out. Without that,
    autograd stayed off for every later job of the process (Hydra runs a sweep's jobs in one
    process), and each of them crashed ("element 0 of tensors does not require grad")."""
    import signal
    import threading

    if (seconds is None or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise OverBudget(f"over its CPU budget of {seconds:.3g} s (tune.max_cost)")

    grad_mode = torch.is_grad_enabled()
    previous = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, max(float(seconds), 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        torch.set_grad_enabled(grad_mode)


def augment_batch(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding) and horizontal flip, batched on the tensor's device."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=g).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=g).to(x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]
    out = padded[torch.arange(n, device=x.device)[:, None, None, None],
                 torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
    flip = (torch.rand(n, generator=g) < 0.5).to(x.device)[:, None, None, None]
    return torch.where(flip, out.flip(3), out)


def shuffled_batches(indices: torch.Tensor, y: torch.Tensor, batch_size: int) -> EpochPlan:
    """The plain epoch: a fresh permutation of ``indices`` cut into ``batch_size`` slices."""
    def plan(epoch: int, g: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        order = indices[torch.randperm(len(indices), generator=g).to(indices.device)]
        return [(batch, y[batch]) for batch in order.split(batch_size)]
    return plan


def progress_bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=True,
                    disable=not enabled)


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: Recipe,
    *,
    seed: int,
    indices: torch.Tensor | None = None,
    options: FitOptions | None = None,
) -> float:
    """Train ``model`` in place on ``x[indices]`` with SGD; returns wall-clock seconds.

    Batches are index slices of tensors already on the device. The data order and the
    augmentation draw from a generator seeded by ``seed``, so CPU runs are reproducible.
    """
    opts = options or FitOptions()
    device = x.device
    prepare(model, device)
    indices = torch.arange(len(x), device=device) if indices is None else indices.to(device)
    if len(indices) == 0 and opts.epoch_plan is None:
        return 0.0
    plan = opts.epoch_plan or shuffled_batches(indices, y, recipe.batch_size)
    g = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    model.train()
    with stopwatch(device) as clock, progress_bar(opts.progress) as bar:
        task = bar.add_task(opts.desc, total=None, info="")
        for epoch in range(recipe.epochs):
            batches = plan(epoch, g)
            steps_per_epoch = max(len(batches), 1)
            bar.update(task, total=recipe.epochs * steps_per_epoch)
            for step, (batch, yb) in enumerate(batches):
                done = epoch + step / steps_per_epoch
                for group in opt.param_groups:
                    group["lr"] = recipe.lr_at(done)
                xb = x[batch]
                if recipe.augment:
                    xb = augment_batch(xb, g)
                if device.type == "cuda":
                    xb = xb.contiguous(memory_format=torch.channels_last)
                for obs in opts.observers:
                    obs.before_step(batch, model)
                with autocast(device):
                    loss = opts.objective(model(xb), yb)
                if opts.regulariser is not None:
                    loss = loss + opts.regulariser(model, done / max(recipe.epochs, 1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                for obs in opts.observers:
                    obs.after_step(batch, model)
                # Reading the loss syncs the device: do it every few steps only.
                if step % 20 == 0 or step == steps_per_epoch - 1:
                    value = loss.item()
                    if not math.isfinite(value):
                        raise DivergenceError(f"{opts.desc}: non-finite loss at epoch {epoch + 1}")
                    info = f"epoch {epoch + 1}/{recipe.epochs} loss {value:.3f}"
                    bar.update(task, info=info)
                bar.update(task, advance=1)
    model.eval()
    return clock["seconds"]


def warm_up(device: torch.device) -> None:
    """Pay torch's one-time lazy initialisation (optimiser imports, kernels) before anything
    is timed, so the first timed phase of a process is not charged for it."""
    layer = nn.Linear(4, 2).to(device)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    F.cross_entropy(layer(torch.zeros(2, 4, device=device)), torch.zeros(2, dtype=torch.long,
                    device=device)).backward()
    opt.step()
    # torch.func's first vmap/jvp call traces its machinery (~0.15 s on this CPU), a
    # process-level cost that per-sample methods (IU, FF) would otherwise be charged for.
    from torch.func import functional_call, grad, jvp, vmap

    params = {n: p.detach() for n, p in layer.named_parameters()}

    def loss(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(layer, p, (x,)).sum()

    x = torch.zeros(2, 4, device=device)
    with warnings.catch_warnings():  # its first call scripts a helper: torch 2.x's FutureWarning
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.script")
        vmap(grad(loss), in_dims=(None, 0))(params, x)
        jvp(lambda p: loss(p, x), (params,), (params,))
    sync(device)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits in float32 for every row of ``x`` (eval mode)."""
    model.eval()
    outs = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        if x.device.type == "cuda":
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(x.device):
            outs.append(model(xb).float())
    if not outs:
        return torch.empty(0, 0, device=x.device)
    return torch.cat(outs)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy in percent; NaN on an empty set."""
    if len(x) == 0:
        return float("nan")
    return 100.0 * (predict(model, x, batch_size).argmax(1) == y).float().mean().item()

"""N small models of one architecture trained at once, as one vectorised ensemble.

Member k follows ``training.fit``'s procedure step for step (equal to it up to float rounding
of the batched kernels): initialised by ``torch.manual_seed(seeds[k]);
build_model()`` (or taken from ``init_states``), its data order drawn from its own
``torch.Generator().manual_seed(seeds[k])``, batches as index slices of ``indices[k]``, the
recipe's learning rate per step and SGD with momentum and weight decay applied as
``torch.optim.SGD`` applies them. The members' weights are stacked along a leading axis. A
model with a ``forward_stacked`` method (``models.MLP``, ``models.SmallCNN``) runs all N
members as explicit batched kernels (``stacked.py``: one ``baddbmm`` per linear layer, one
grouped convolution per conv layer); any other model goes through ``torch.func.vmap`` over
``functional_call`` (slower: its per-step overhead grows with the layer count). BatchNorm
layers keep one set of running statistics per member.

Restrictions (checked): no augmentation, and every member trains on the same number of
examples (so all members take the same steps with the same batch sizes and learning rates).
Regularisers and step observers of ``fit`` are not offered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .stacked import Stack
from .training import DivergenceError, Objective, Recipe, autocast, progress_bar, stopwatch

ModelBuilder = Callable[[], nn.Module]
# (params, buffers, x [N, B, ...], training) -> logits [N, B, classes]
Kernels = Literal["auto", "vmap"]   # "vmap": never the stacked kernels (benchmarks, tests)
MembersForward = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor,
                           bool], torch.Tensor]


@dataclass
class Ensemble:
    """Weights of N models of one architecture, each tensor stacked along dim 0 (members)."""

    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]

    @property
    def size(self) -> int:
        return len(next(iter(self.params.values())))

    @classmethod
    def from_modules(cls, models: Sequence[nn.Module]) -> Ensemble:
        params, buffers = stack_module_state(list(models))
        return cls({k: v.detach().clone() for k, v in params.items()},
                   {k: v.detach().clone() for k, v in buffers.items()})

    @classmethod
    def from_state_dict(cls, build_model: ModelBuilder, tensors: dict[str, torch.Tensor]
                        ) -> Ensemble:
        """Inverse of ``state_dict`` (e.g. after a safetensors round trip)."""
        names = {name for name, _ in _template(build_model).named_parameters()}
        return cls({k: v for k, v in tensors.items() if k in names},
                   {k: v for k, v in tensors.items() if k not in names})

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The stacked tensors under the model's state-dict names (one file for N models)."""
        return {**self.params, **self.buffers}

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        return {name: t[k].clone() for name, t in self.state_dict().items()}

    def modules(self, build_model: ModelBuilder) -> list[nn.Module]:
        """N independent ``nn.Module``s in eval mode, one per member."""
        models = []
        for k in range(self.size):
            model = _template(build_model, device=None)
            model.load_state_dict(self.member_state(k))
            models.append(model.eval())
        return models

    def to(self, device: torch.device) -> Ensemble:
        return Ensemble({k: v.to(device) for k, v in self.params.items()},
                        {k: v.to(device) for k, v in self.buffers.items()})


def _template(build_model: ModelBuilder, device: str | None = "meta") -> nn.Module:
    """A model of the architecture, built without touching the global RNG state."""
    with torch.random.fork_rng(devices=[]):
        model = build_model()
    return model.to(device) if device is not None else model


def members_forward(template: nn.Module, kernels: Kernels = "auto") -> MembersForward:
    """All members' forward pass: the model's explicit batched kernels where it offers them
    (``forward_stacked``) and ``kernels="auto"``, else ``vmap`` over ``functional_call``."""
    stacked_forward = getattr(template, "forward_stacked", None)
    if stacked_forward is not None and kernels == "auto":
        def batched(params: dict, buffers: dict, x: torch.Tensor, training: bool
                    ) -> torch.Tensor:
            return stacked_forward({**params, **buffers}, Stack(x, len(x)),
                                   training).members_first()
        return batched

    def member(p: dict, b: dict, xb: torch.Tensor) -> torch.Tensor:
        return functional_call(template, (p, b), (xb,))

    def mapped(params: dict, buffers: dict, x: torch.Tensor, training: bool) -> torch.Tensor:
        template.train(training)
        return vmap(member)(params, buffers, x)
    return mapped


def init_ensemble(build_model: ModelBuilder, seeds: Sequence[int]) -> Ensemble:
    """Member k initialised exactly as ``torch.manual_seed(seeds[k]); build_model()``."""
    models = []
    for seed in seeds:
        torch.manual_seed(int(seed))
        models.append(build_model())
    return Ensemble.from_modules(models)


def _member_rows(rows: torch.Tensor | Sequence[torch.Tensor] | None, n_members: int,
                 n_examples: int, device: torch.device) -> torch.Tensor:
    """Each member's training indices as one [N, n] tensor; all of x when None."""
    if rows is None:
        return torch.arange(n_examples, device=device).expand(n_members, -1)
    lengths = {len(r) for r in rows}
    if len(rows) != n_members or len(lengths) != 1:
        raise ValueError(f"indices_per_member: need {n_members} index sets of one common "
                         f"length (got {len(rows)} with lengths {sorted(lengths)})")
    return torch.stack([torch.as_tensor(r, device=device) for r in rows])


def train_ensemble(
    build_model: ModelBuilder,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: Recipe,
    seeds: Sequence[int],
    *,
    indices_per_member: torch.Tensor | Sequence[torch.Tensor] | None = None,
    labels_per_member: torch.Tensor | None = None,
    objective: Objective = F.cross_entropy,
    init_states: Ensemble | None = None,
    progress: bool = False,
    desc: str = "ensemble",
    kernels: Kernels = "auto",
) -> tuple[Ensemble, float]:
    """Train N = len(seeds) models at once; returns the trained ensemble and wall seconds.

    ``seeds[k]`` seeds member k's data order and, without ``init_states``, its initialisation.
    ``indices_per_member``: [N, n] (or N equal-length tensors) of rows of ``x`` each member
    trains on; ``labels_per_member``: [N, len(x)] labels replacing ``y`` per member (random
    labels); ``init_states``: start from these weights (e.g. N trained originals, to unlearn).
    ``objective(logits, labels)`` must be vmap-compatible (cross-entropy, its negation).
    """
    if recipe.augment:
        raise ValueError("train_ensemble: recipe.augment=true is not supported (the batched "
                         "crop and flip would need each member's own random stream)")
    device = x.device
    n_members = len(seeds)
    state = (init_states if init_states is not None
             else init_ensemble(build_model, seeds)).to(device)
    if state.size != n_members:
        raise ValueError(f"init_states has {state.size} members, seeds has {n_members}")
    rows = _member_rows(indices_per_member, n_members, len(x), device)
    labels = (y.expand(n_members, -1) if labels_per_member is None
              else torch.as_tensor(labels_per_member, device=device))
    n = rows.shape[1]
    if n == 0:
        return state, 0.0
    forward = members_forward(_template(build_model), kernels)
    leaves = {k: _training_layout(v).requires_grad_(True) for k, v in state.params.items()}
    buffers = {k: v.clone() for k, v in state.buffers.items()}
    member_losses = vmap(objective)   # [N, B, classes], [N, B] -> [N]
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    opt = _stacked_sgd(list(leaves.values()), recipe)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    with stopwatch(device) as clock, progress_bar(progress) as bar:
        task = bar.add_task(desc, total=recipe.epochs * steps_per_epoch, info="")
        for epoch in range(recipe.epochs):
            order = torch.stack([rows[k][torch.randperm(n, generator=g).to(device)]
                                 for k, g in enumerate(generators)])
            for step in range(steps_per_epoch):
                batch = order[:, step * recipe.batch_size:(step + 1) * recipe.batch_size]
                for group in opt.param_groups:
                    group["lr"] = recipe.lr_at(epoch + step / steps_per_epoch)
                with autocast(device):   # bf16 on CUDA, as fit; a no-op on CPU
                    params = {k: _model_layout(v) for k, v in leaves.items()}
                    logits = forward(params, buffers, x[batch], True)
                    losses = member_losses(logits, labels.gather(1, batch))
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()   # member k's loss reaches only member k's weights
                opt.step()
                if step % 20 == 0 or step == steps_per_epoch - 1:
                    worst = losses.detach().abs().max().item()
                    if not math.isfinite(worst):
                        bad = torch.nonzero(~losses.isfinite()).flatten().tolist()
                        raise DivergenceError(f"{desc}: non-finite loss at epoch {epoch + 1} "
                                              f"in members {bad}")
                    bar.update(task, info=f"epoch {epoch + 1}/{recipe.epochs}")
                bar.update(task, advance=1)
    trained = Ensemble({k: _model_layout(v.detach()).contiguous() for k, v in leaves.items()},
                       buffers)
    return trained, clock["seconds"]


def _training_layout(weight: torch.Tensor) -> torch.Tensor:
    """A copy to train: stacked matrices ``[N, out, in]`` stored as ``[N, in, out]``, so the
    weight gradient of the batched matmul arrives contiguous and accumulating it costs no
    copy (about a quarter of an MLP step otherwise). SGD is elementwise: layout-free."""
    return (weight.transpose(1, 2) if weight.dim() == 3 else weight).contiguous().clone()


def _model_layout(leaf: torch.Tensor) -> torch.Tensor:
    """The model's view of a training leaf (a transpose back, no copy)."""
    return leaf.transpose(1, 2) if leaf.dim() == 3 else leaf


def _stacked_sgd(params: list[torch.Tensor], recipe: Recipe) -> torch.optim.SGD:
    """``torch.optim.SGD`` over the stacked weights: its update is elementwise, so each
    member's slice gets exactly the update its own optimiser would give it. The fused kernel
    (one pass over each tensor) computes the same arithmetic and is several times faster on
    the large stacked tensors; where a device lacks it, the default implementation runs."""
    kwargs = dict(lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    try:
        return torch.optim.SGD(params, fused=True, **kwargs)
    except (RuntimeError, ValueError):
        return torch.optim.SGD(params, **kwargs)


@torch.no_grad()
def predict_ensemble(build_model: ModelBuilder, ensemble: Ensemble, x: torch.Tensor,
                     batch_size: int = 256, kernels: Kernels = "auto") -> torch.Tensor:
    """Logits of every member for every row of ``x``: [N, len(x), classes], eval mode."""
    forward = members_forward(_template(build_model), kernels)
    ensemble = ensemble.to(x.device)
    outs = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        with autocast(x.device):
            outs.append(forward(ensemble.params, ensemble.buffers,
                                xb.expand(ensemble.size, *xb.shape), False).float())
    if not outs:
        return torch.empty(ensemble.size, 0, 0, device=x.device)
    return torch.cat(outs, dim=1)

"""Layers of N models of one architecture computed at once, as explicit batched kernels.

Every weight carries a leading member axis (``[N, *shape]``, the model's own state-dict
names). Activations travel in one of two layouts:

- *members first* ``[N, B, ...]``: a linear layer is one ``torch.baddbmm`` over the members;
- *grouped channels* ``[B, N * C, H, W]``: member k owns channels ``k*C .. k*C + C - 1``, so a
  convolution is one grouped ``conv2d`` (``groups = N``), BatchNorm is one ``batch_norm`` over
  N * C channels (per-member statistics), and ReLU and max-pooling act per channel anyway.

:class:`Stack` converts between the two only where a layer needs the other one. A model offers
the fast path by a ``forward_stacked(state, stack, training)`` method built from these
functions (``models.MLP``, ``models.SmallCNN``); others go through ``torch.func.vmap``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

State = Mapping[str, torch.Tensor]


@dataclass
class Stack:
    """The activations of N members, in one of the two layouts."""

    tensor: torch.Tensor
    members: int
    grouped: bool = False     # [B, N*C, H, W] instead of [N, B, ...]

    def members_first(self) -> torch.Tensor:
        if not self.grouped:
            return self.tensor
        b, nc, *rest = self.tensor.shape
        return self.tensor.view(b, self.members, nc // self.members, *rest).transpose(0, 1)

    def channels(self) -> torch.Tensor:
        if self.grouped:
            return self.tensor
        n, b, c, *rest = self.tensor.shape
        return self.tensor.transpose(0, 1).reshape(b, n * c, *rest)

    def with_members_first(self, tensor: torch.Tensor) -> Stack:
        return Stack(tensor, self.members, grouped=False)

    def with_channels(self, tensor: torch.Tensor) -> Stack:
        return Stack(tensor, self.members, grouped=True)


def linear(stack: Stack, weight: torch.Tensor, bias: torch.Tensor | None) -> Stack:
    """``[N, B, in] -> [N, B, out]`` with weights ``[N, out, in]`` and biases ``[N, out]``."""
    x = stack.members_first()
    if bias is None:
        return stack.with_members_first(torch.bmm(x, weight.transpose(1, 2)))
    return stack.with_members_first(torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2)))


def flatten(stack: Stack) -> Stack:
    x = stack.members_first()
    return stack.with_members_first(x.reshape(x.shape[0], x.shape[1], -1))


def conv2d(stack: Stack, layer: nn.Conv2d, weight: torch.Tensor,
           bias: torch.Tensor | None) -> Stack:
    """One grouped convolution: member k's filters see only member k's channels."""
    if layer.groups != 1 or layer.padding_mode != "zeros":
        raise TypeError("stacked conv2d: only groups=1 with zero padding")
    n = stack.members
    out = F.conv2d(stack.channels(), weight.reshape(n * weight.shape[1], *weight.shape[2:]),
                   None if bias is None else bias.reshape(-1), layer.stride, layer.padding,
                   layer.dilation, groups=n)
    return stack.with_channels(out)


def batch_norm(stack: Stack, layer: nn.BatchNorm2d, state: State, prefix: str,
               training: bool) -> Stack:
    """BatchNorm over N * C channels: batch statistics per member and channel; the stacked
    running statistics ``[N, C]`` are updated in place, as each member's own layer would."""
    if not (layer.affine and layer.track_running_stats and layer.momentum is not None):
        raise TypeError("stacked batch_norm: needs affine=True, track_running_stats=True and "
                        "a momentum")
    mean, var = state[prefix + "running_mean"], state[prefix + "running_var"]
    if training:
        state[prefix + "num_batches_tracked"].add_(1)  # type: ignore[index]
    out = F.batch_norm(stack.channels(), mean.view(-1), var.view(-1),
                       state[prefix + "weight"].reshape(-1), state[prefix + "bias"].reshape(-1),
                       training, layer.momentum, layer.eps)
    return stack.with_channels(out)


def max_pool2d(stack: Stack, layer: nn.MaxPool2d) -> Stack:
    return stack.with_channels(F.max_pool2d(stack.channels(), layer.kernel_size, layer.stride,
                                            layer.padding, layer.dilation,
                                            ceil_mode=layer.ceil_mode))


def relu(stack: Stack) -> Stack:
    return Stack(torch.relu(stack.tensor), stack.members, stack.grouped)


def spatial_mean(stack: Stack) -> Stack:
    """Global average pooling: ``[B, N*C, H, W] -> [N, B, C]``."""
    x = stack.channels().mean(dim=(2, 3))
    return stack.with_members_first(x.view(x.shape[0], stack.members, -1).transpose(0, 1))


def sequential(seq: nn.Sequential, prefix: str, state: State, stack: Stack,
               training: bool) -> Stack:
    """The layers of ``seq`` (Linear, Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten)."""
    for name, layer in seq.named_children():
        key = f"{prefix}{name}."
        if isinstance(layer, nn.Linear):
            stack = linear(stack, state[key + "weight"], state.get(key + "bias"))
        elif isinstance(layer, nn.Conv2d):
            stack = conv2d(stack, layer, state[key + "weight"], state.get(key + "bias"))
        elif isinstance(layer, nn.BatchNorm2d):
            stack = batch_norm(stack, layer, state, key, training)
        elif isinstance(layer, nn.ReLU):
            stack = relu(stack)
        elif isinstance(layer, nn.MaxPool2d):
            stack = max_pool2d(stack, layer)
        elif isinstance(layer, nn.Flatten) and layer.start_dim == 1 and layer.end_dim == -1:
            stack = flatten(stack)
        else:
            raise TypeError(f"stacked forward: no batched {type(layer).__name__}")
    return stack

"""Model zoo, sized from the dataset's input shape and class count.

A model config names its class by ``_target_``; the class takes the input shape and class
count positionally and its widths as typed keyword-only parameters (checked before use).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import torch
from torch import nn

from . import stacked
from .params import NonEmpty, PositiveInt, Range
from .registry import resolve

Widths = Annotated[list[PositiveInt], NonEmpty()]
InputShape = tuple[int, int, int]


class MLP(nn.Module):
    FEATURE_BLOCKS: tuple[str, ...] = ()  # no spatial feature maps (see `feature_blocks`)

    def __init__(self, input_shape: InputShape, num_classes: int, *,
                 hidden: Annotated[list[PositiveInt], NonEmpty()]) -> None:
        super().__init__()
        in_features = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU()]
            in_features = width
        layers.append(nn.Linear(in_features, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_stacked(self, state: stacked.State, x: stacked.Stack,
                        training: bool) -> stacked.Stack:
        """N members at once (``unlearnbench.ensemble``): weights stacked in ``state``."""
        return stacked.sequential(self.net, "net.", state, x, training)


class SmallCNN(nn.Module):
    """Conv blocks with max-pool, then global average pooling: works from 8x8 to 32x32 inputs."""

    def __init__(self, input_shape: InputShape, num_classes: int, *, channels: Widths) -> None:
        super().__init__()
        in_channels = input_shape[0]
        blocks: list[nn.Module] = []
        for width in channels:
            blocks += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width),
                       nn.ReLU(), nn.MaxPool2d(2)]
            in_channels = width
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(in_channels, num_classes)
        # each block's ReLU output (before its pool)
        self.FEATURE_BLOCKS = tuple(f"features.{4 * i + 2}" for i in range(len(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))

    def forward_stacked(self, state: stacked.State, x: stacked.Stack,
                        training: bool) -> stacked.Stack:
        """N members at once (``unlearnbench.ensemble``): weights stacked in ``state``."""
        features = stacked.sequential(self.features, "features.", state, x, training)
        return stacked.linear(stacked.spatial_mean(features), state["head.weight"],
                              state["head.bias"])


def _conv_block(cin: int, cout: int, kernel: int, stride: int, batch_norm: bool) -> nn.Sequential:
    """Conv (no bias under batch norm), batch norm, ReLU: the reference's `Conv` block."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2,
                                         bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class AllCNN(nn.Module):
    """All-CNN (Springenberg et al., 2015) as the zero-shot unlearning paper uses it
    (ayushkumartarun/zero-shot-unlearning `models.py`): eight conv blocks of 96·width and
    192·width filters, stride-2 convs instead of pooling, a 1x1 conv, global average pooling
    and one linear layer. The reference pools with AvgPool2d(7) for 28x28 and (8) for 32x32
    inputs, which is the global average there; global pooling makes the same net work from
    8x8 inputs upwards."""

    FEATURE_BLOCKS = tuple(f"conv{i}" for i in range(1, 9))  # the reference's actv1..actv8

    def __init__(self, input_shape: InputShape, num_classes: int, *,
                 width: Annotated[float, Range(0.01, 16)] = 1.0, batch_norm: bool = True,
                 dropout: bool = False) -> None:
        super().__init__()
        n1, n2 = max(1, int(96 * width)), max(1, int(192 * width))
        specs = [(input_shape[0], n1, 3, 1), (n1, n1, 3, 1), (n1, n2, 3, 2),
                 (n2, n2, 3, 1), (n2, n2, 3, 1), (n2, n2, 3, 2), (n2, n2, 3, 1), (n2, n2, 1, 1)]
        for i, (cin, cout, k, s) in enumerate(specs, start=1):
            setattr(self, f"conv{i}", _conv_block(cin, cout, k, s, batch_norm))
        self.dropout1 = nn.Dropout() if dropout else nn.Identity()
        self.dropout2 = nn.Dropout() if dropout else nn.Identity()
        self.classifier = nn.Linear(n2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))
        out = self.conv6(self.conv5(self.conv4(self.dropout1(out))))
        out = self.conv8(self.conv7(self.dropout2(out)))
        return self.classifier(out.mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR variant: 3x3 stem with stride 1 and no max-pool."""

    FEATURE_BLOCKS = tuple(f"layers.{i}" for i in range(8))

    def __init__(self, input_shape: InputShape, num_classes: int, *,
                 width: PositiveInt = 64) -> None:
        super().__init__()
        in_channels = input_shape[0]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        layers, cin = [], width
        for i, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(self.stem(x)).mean(dim=(2, 3)))


def feature_blocks(model: nn.Module) -> tuple[str, ...]:
    """Names of the submodules whose outputs are the model's spatial feature maps (attention
    transfer reads them); empty for a model without any (an MLP)."""
    return tuple(getattr(model, "FEATURE_BLOCKS", ()))


# Keys every model config has besides its class's parameters.
DESCRIPTOR_KEYS = ("_target_", "name")


def model_class(cfg: Mapping[str, Any], allow: tuple[str, ...] = ()) -> Any:
    return resolve(cfg.get("_target_"), "model", "model._target_", allow)


def build_model(cfg: Mapping[str, Any], input_shape: InputShape, num_classes: int) -> nn.Module:
    """Instantiate the configured model (its weights drawn from the current torch RNG)."""
    params = {k: v for k, v in cfg.items() if k not in DESCRIPTOR_KEYS}
    return model_class(cfg)(tuple(input_shape), num_classes, **params)

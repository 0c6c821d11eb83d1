"""ASR: how often the backdoor trigger still works (Trojan cleansing, Unlearn-Sparse
``main_backdoor.py``).

Applies to jobs whose scenario poisons the training data with a trigger (``scenario=backdoor``):
the metric reads the trigger from the job's split and returns no columns for any other job,
so clean jobs keep their tables unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from ..context import TrainEnv
from ..poison import Poisoning
from ..training import predict


def attack_success(model: nn.Module, env: TrainEnv, batch_size: int) -> dict[str, float]:
    """``ASR``: percent of the triggered test images of the non-target classes predicted as
    the target class. ``ASR_all``: the same over every test image, target class included,
    i.e. the reference's ``attack_acc`` (accuracy on the stamped test set relabelled to the
    target). Clean accuracy is the usual ``TA``."""
    poisoning = env.split.transform
    if not isinstance(poisoning, Poisoning):
        return {}
    data = env.data
    stamped = poisoning.trigger.stamp(data.test_x, data)
    hit = predict(model, stamped, batch_size).argmax(1) == poisoning.target_class
    others = data.test_y != poisoning.target_class
    return {"ASR": _percent(hit[others]), "ASR_all": _percent(hit)}


def _percent(flags: torch.Tensor) -> float:
    return 100.0 * flags.float().mean().item() if len(flags) else float("nan")

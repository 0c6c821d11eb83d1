"""MIA-Efficacy, the Unlearn-Sparse definition (SVC on one softmax feature)."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from sklearn.svm import SVC
from torch import nn

from ..context import TrainEnv
from ..params import NonEmpty, PositiveInt
from ..training import predict
from .accuracy import test_mask

Feature = Literal["confidence", "entropy"]


def softmax_feature(logits: torch.Tensor, labels: torch.Tensor, feature: str) -> np.ndarray:
    """One scalar per sample: probability of the true label, or entropy of the softmax."""
    probs = torch.softmax(logits.float(), dim=1)
    if feature == "confidence":
        values = probs.gather(1, labels[:, None]).squeeze(1)
    else:  # entropy
        values = -(probs * torch.log(probs.clamp_min(1e-30))).sum(1)
    values = values.cpu().numpy()[:, None]
    if not np.isfinite(values).all():
        raise FloatingPointError("non-finite model outputs (the weights exploded)")
    return values


def svc_mia_efficacy(members: np.ndarray, non_members: np.ndarray, targets: np.ndarray) -> float:
    """Fit SVC(C=3, rbf, gamma=auto) members=1 vs non-members=0; % of targets called non-member."""
    x = np.concatenate([members, non_members])
    y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    clf = SVC(C=3, kernel="rbf", gamma="auto").fit(x, y)
    return 100.0 * float((clf.predict(targets) == 0).mean())


def mia_metrics(model: nn.Module, env: TrainEnv, batch_size: int, *,
                features: Annotated[list[Feature], NonEmpty()] = ("confidence", "entropy"),
                max_shadow: PositiveInt = 3000) -> dict[str, float]:
    """Members: the first |D_test'| retain samples; non-members: D_test'; targets: D_f.
    ``MIA`` is the first feature's value; each feature also as ``MIA_<feature>``.

    Both shadow sides are capped at ``max_shadow`` samples (a fixed, evenly spaced subsample)
    because the SVC's cost grows quadratically with its training set.
    """
    data, split = env.data, env.split
    features = list(features)
    keep = test_mask(data, split)
    test_x, test_y = data.test_x[keep], data.test_y[keep]
    n = min(len(test_y), len(split.retain))
    member_idx = split.retain[:n].to(data.train_x.device)

    def thin(count: int) -> torch.Tensor:
        return torch.linspace(0, count - 1, min(count, max_shadow)).round().long()

    mem_sel, non_sel = thin(n), thin(len(test_y))
    forget = split.forget.to(data.train_x.device)
    logits = {
        "members": (predict(model, data.train_x[member_idx], batch_size), data.train_y[member_idx]),
        "non_members": (predict(model, test_x, batch_size), test_y),
        "targets": (predict(model, data.train_x[forget], batch_size), data.train_y[forget]),
    }
    out = {}
    for feature in features:
        mem = softmax_feature(*logits["members"], feature)[mem_sel.numpy()]
        non = softmax_feature(*logits["non_members"], feature)[non_sel.numpy()]
        tgt = softmax_feature(*logits["targets"], feature)
        out[f"MIA_{feature}"] = svc_mia_efficacy(mem, non, tgt)
    out["MIA"] = out[f"MIA_{features[0]}"]
    return out

"""MIA-Efficacy, the Unlearn-Sparse definition (`evaluation/SVC_MIA.py`, `SVC_MIA`): an
SVC(C=3, kernel="rbf", gamma="auto") fit on one softmax feature of shadow members (retain
samples) against shadow non-members (test samples), applied to D_f."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from sklearn.svm import SVC
from torch import nn

from ..context import TrainEnv
from ..params import NonEmpty, PositiveFloat, Range
from ..training import predict
from .accuracy import test_mask
from .rbf_svc import rbf_svc_decision

Feature = Literal["confidence", "entropy"]
Solver = Literal["interior_point", "libsvm"]
Tolerance = Annotated[float, Range(0, 1e-3, low_open=True, hint="a tolerance in (0, 1e-3]")]


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


def svc_mia_efficacy(members: np.ndarray, non_members: np.ndarray, targets: np.ndarray, *,
                     solver: Solver = "interior_point", svc_c: float = 3.0,
                     kernel_tol: float = 1e-12, solver_tol: float = 1e-10) -> float:
    """Fit SVC(C=svc_c, rbf, gamma="auto") members=1 vs non-members=0 on one feature; the %
    of targets called non-member. ``solver``: ``libsvm`` is scikit-learn's SVC as in the
    reference; ``interior_point`` solves the same problem exactly (:mod:`.rbf_svc`)."""
    x = np.concatenate([members, non_members])
    gamma = 1.0 / x.shape[1]  # gamma="auto"
    if solver == "libsvm":
        y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
        clf = SVC(C=svc_c, kernel="rbf", gamma="auto").fit(x, y)
        return 100.0 * float((clf.predict(targets) == 0).mean())
    y = np.concatenate([np.ones(len(members)), -np.ones(len(non_members))])
    decision = rbf_svc_decision(x, y, targets, c=svc_c, gamma=gamma, kernel_tol=kernel_tol,
                                tol=solver_tol)
    return 100.0 * float((decision < 0).mean())


def mia_metrics(model: nn.Module, env: TrainEnv, batch_size: int, *,
                features: Annotated[list[Feature], NonEmpty()] = ("confidence", "entropy"),
                solver: Solver = "interior_point", svc_c: PositiveFloat = 3.0,
                kernel_tol: Tolerance = 1e-12, solver_tol: Tolerance = 1e-10
                ) -> dict[str, float]:
    """Members: the first |D_test'| retain samples; non-members: D_test'; targets: D_f (the
    reference's shadow and target sets, all of them). ``MIA`` is the first feature's value;
    each feature also as ``MIA_<feature>``."""
    data, split = env.data, env.split
    features = list(features)
    keep = test_mask(data, split)
    test_x, test_y = data.test_x[keep], data.test_y[keep]
    n = min(len(test_y), len(split.retain))
    member_idx = split.retain[:n].to(data.train_x.device)
    forget = split.forget.to(data.train_x.device)
    logits = {
        "members": (predict(model, data.train_x[member_idx], batch_size), data.train_y[member_idx]),
        "non_members": (predict(model, test_x, batch_size), test_y),
        "targets": (predict(model, data.train_x[forget], batch_size), data.train_y[forget]),
    }
    out = {}
    for feature in features:
        mem, non, tgt = (softmax_feature(*logits[side], feature)
                         for side in ("members", "non_members", "targets"))
        out[f"MIA_{feature}"] = svc_mia_efficacy(mem, non, tgt, solver=solver, svc_c=svc_c,
                                                 kernel_tol=kernel_tol, solver_tol=solver_tol)
    out["MIA"] = out[f"MIA_{features[0]}"]
    return out

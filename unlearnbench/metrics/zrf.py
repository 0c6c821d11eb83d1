"""ZRF, the Zero Retrain Forgetting score of the Bad Teacher paper (Chundawat et al., AAAI
2023; reference vikram2000b/bad-teaching-unlearning `metrics.py`: `JSDiv`, `UnLearningScore`):
1 − JS(model ‖ T_d) on D_f, where T_d is a randomly initialised model of the same architecture
(the "incompetent teacher"). 1: the model answers on D_f like a random model; lower: it still
holds what it learned there.

``mode: reference`` (default) is the reference's formula: with p, q the two softmax outputs
and m = (p + q)/2 it computes ½·F.kl_div(log p, m) + ½·F.kl_div(log q, m); F.kl_div(input,
target) is KL(target ‖ ·), so this is ½·KL(m‖p) + ½·KL(m‖q) (not the JS divergence), averaged
over samples *and* classes (reduction 'mean'), in nats. ``mode: fixed`` is the JS divergence
½·KL(p‖m) + ½·KL(q‖m) per sample, in bits (so ZRF lies in [0, 1] as the paper states),
averaged over samples. The reference scores the forget classes' test samples in its notebook;
we score D_f, the forget-train set, as the paper defines it. Probabilities are clamped at 1e-30
before the logarithm (a saturated softmax would make the reference's value infinite).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from ..context import TrainEnv
from ..training import predict

SALT = 0x2F  # the random model's weights: their own stream


def js_reference(p: torch.Tensor, q: torch.Tensor) -> float:
    """The reference's `JSDiv`: ½·KL(m‖p) + ½·KL(m‖q), mean over all N·C entries."""
    m = (p + q) / 2
    log_m = m.clamp_min(1e-30).log()

    def kl_div_mean(log_input: torch.Tensor) -> torch.Tensor:  # F.kl_div(input, m), 'mean'
        return (m * (log_m - log_input)).mean()

    return float(0.5 * kl_div_mean(p.clamp_min(1e-30).log())
                 + 0.5 * kl_div_mean(q.clamp_min(1e-30).log()))


def js_bits(p: torch.Tensor, q: torch.Tensor) -> float:
    """The Jensen–Shannon divergence per sample, in bits, averaged over samples."""
    m = (p + q) / 2

    def kl(a: torch.Tensor) -> torch.Tensor:
        return (a * (a.clamp_min(1e-30).log() - m.clamp_min(1e-30).log())).sum(1)

    return float(((0.5 * kl(p) + 0.5 * kl(q)) / math.log(2)).mean())


def zrf(model: nn.Module, env: TrainEnv, batch_size: int, *,
        mode: Literal["reference", "fixed"] = "reference") -> dict[str, float]:
    forget = env.split.forget.to(env.data.train_x.device)
    x = env.data.train_x[forget]
    with torch.random.fork_rng(devices=[]):  # leave the global stream as it was
        torch.manual_seed(env.seed * 1_000_003 + SALT)
        random_model = env.build_model().eval()
    p = torch.softmax(predict(model, x, batch_size), 1)
    q = torch.softmax(predict(random_model, x, batch_size), 1)
    divergence = js_reference(p, q) if mode == "reference" else js_bits(p, q)
    return {"ZRF": 1.0 - divergence}

"""Metrics of generated images in the feature space of a judge classifier.

The paper measures FID and IS with Inception (ImageNet) or a Places-365 ResNet-50, and the
similarity to the ground truth with CLIP embeddings; on 32x32 greyscale datasets a small CNN
trained on all classes of the same data plays all three roles. Pure functions of arrays below,
one wrapper (`split_metrics`) per split of generated images.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from ..models import SmallCNN
from ..training import FitOptions, Recipe, fit

JUDGE_CHANNELS = (16, 32, 64)


def build_judge(num_classes: int, channels: tuple[int, ...] = JUDGE_CHANNELS) -> SmallCNN:
    return SmallCNN((1, 32, 32), num_classes, channels=list(channels))


def train_judge(images: torch.Tensor, labels: torch.Tensor, *, seed: int, epochs: int = 3,
                batch_size: int = 128, lr: float = 0.05,
                channels: tuple[int, ...] = JUDGE_CHANNELS, progress: bool = False) -> SmallCNN:
    """A judge on (N, 1, 32, 32) images in [0, 1] and their labels, trained with the project's
    shared loop (SGD, cosine schedule); the caller caches it."""
    torch.manual_seed(seed)
    judge = build_judge(int(labels.max()) + 1, channels)
    fit(judge, images, labels, Recipe(epochs=epochs, batch_size=batch_size, lr=lr), seed=seed,
        options=FitOptions(desc="judge", progress=progress))
    return judge.eval()


@torch.no_grad()
def judge_outputs(judge: SmallCNN, images: torch.Tensor,
                  batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (float64) and class probabilities of each image."""
    judge.eval()
    feats, probs = [], []
    for start in range(0, len(images), batch_size):
        f = judge.features(images[start : start + batch_size]).mean(dim=(2, 3))
        feats.append(f.double().cpu())
        probs.append(judge.head(f).softmax(1).double().cpu())
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(matrix)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets (rows),
    in float64; the trace of the matrix square root is that of (S_a^(1/2) S_b S_a^(1/2))^(1/2),
    a symmetric matrix, so an eigen-decomposition suffices."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0.0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, *, subsets: int = 50,
                              subset_size: int = 500, seed: int = 0) -> tuple[float, float]:
    """KID (Binkowski et al., 2018): the unbiased MMD^2 with the cubic polynomial kernel
    k(x, y) = (x.y / d + 1)^3, averaged over random subsets; returns (mean, std)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        off = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(off - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def inception_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """exp(E_x KL(p(y|x) || p(y))) from the judge's softmax (one split)."""
    p = np.asarray(probs, np.float64)
    marginal = p.mean(0, keepdims=True)
    kl = (p * (np.log(p + eps) - np.log(marginal + eps))).sum(1)
    return float(np.exp(kl.mean()))


def cosine_to_truth(generated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image cosine similarity of a generated image's features to its ground truth's."""
    g, t = np.asarray(generated, np.float64), np.asarray(truth, np.float64)
    norms = np.linalg.norm(g, axis=1) * np.linalg.norm(t, axis=1)
    return (g * t).sum(1) / np.clip(norms, 1e-12, None)


def recognised_share(probs: np.ndarray, classes: list[int]) -> float:
    """Share of images the judge assigns to one of ``classes``."""
    return float(np.isin(np.asarray(probs).argmax(1), classes).mean())


def cosine_pvalue(forget_cos: np.ndarray, retain_cos: np.ndarray) -> float:
    """Two-sided Welch t-test of per-image cosine, forget vs retain: a small p-value says the
    model treats the two splits differently."""
    return float(stats.ttest_ind(forget_cos, retain_cos, equal_var=False).pvalue)


def split_metrics(judge: SmallCNN, generated: torch.Tensor, truth: torch.Tensor,
                  forget_classes: list[int], *, kid_seed: int = 0) -> dict[str, object]:
    """FD, KID, IS, cos and ``recognised`` (the share judged as a forget class) of generated
    images against their ground truth, plus the per-image cosines (for the t-test)."""
    gen_f, gen_p = judge_outputs(judge, generated)
    true_f, _ = judge_outputs(judge, truth)
    cos = cosine_to_truth(gen_f, true_f)
    kid, _ = kernel_inception_distance(gen_f, true_f, seed=kid_seed)
    return {"FD": frechet_distance(gen_f, true_f), "KID": kid, "IS": inception_score(gen_p),
            "cos": float(cos.mean()), "recognised": recognised_share(gen_p, forget_classes),
            "cos_per_image": cos}


def inpainting_metrics(judge: SmallCNN, *, retain_generated: torch.Tensor,
                       retain_truth: torch.Tensor, forget_generated: torch.Tensor,
                       forget_truth: torch.Tensor, forget_classes: list[int]) -> dict[str, float]:
    """One model's row: ``retain_X`` and ``forget_X`` for X in FD, KID, IS, cos; then
    ``forget_recognised`` (share of forget outputs judged as a forget class) and ``cos_pvalue``
    (per-image cosine, forget vs retain)."""
    row: dict[str, float] = {}
    per_image, recognised = {}, {}
    for split, gen, truth in (("retain", retain_generated, retain_truth),
                              ("forget", forget_generated, forget_truth)):
        values = split_metrics(judge, gen, truth, forget_classes)
        per_image[split] = values.pop("cos_per_image")
        recognised[split] = values.pop("recognised")
        row.update({f"{split}_{k}": float(v) for k, v in values.items()})
    row["forget_recognised"] = float(recognised["forget"])
    row["cos_pvalue"] = cosine_pvalue(per_image["forget"], per_image["retain"])
    return row

"""Reconstruction metrics as the papers' evaluation code defines them (Brain-Diffuser, MindEye, MinD-Vis).

PixCorr and SSIM compare pixels; two-way and n-way identification ask whether a reconstruction is closer, in some
feature space, to its own stimulus than to others. Hearth uses the VAE latent and the pixels as feature spaces
(no CLIP/AlexNet weights ship with it).
"""
from __future__ import annotations

import numpy as np


def _as_float(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    return images.astype(np.float64) / 255.0 if images.dtype == np.uint8 else images.astype(np.float64)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    denom = np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1))
    return np.where(denom > 0, (a * b).sum(1) / np.where(denom > 0, denom, 1), 0.0)


def pixcorr(truth: np.ndarray, recon: np.ndarray) -> float:
    """Mean Pearson r between each stimulus and its reconstruction, flattened (same size, [N, H, W, 3])."""
    t, r = _as_float(truth), _as_float(recon)
    return float(_pearson_rows(t.reshape(len(t), -1), r.reshape(len(r), -1)).mean())


def ssim(truth: np.ndarray, recon: np.ndarray) -> float:
    """Mean SSIM on greyscale images: Gaussian weights, sigma 1.5, no sample covariance, data range 1."""
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    t, r = _as_float(truth), _as_float(recon)
    scores = [structural_similarity(rgb2gray(a), rgb2gray(b), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0) for a, b in zip(t, r)]
    return float(np.mean(scores))


def correlation_matrix(recon_features: np.ndarray, truth_features: np.ndarray) -> np.ndarray:
    """``C[i, j]`` = Pearson r between reconstruction i and stimulus j."""
    a = np.asarray(recon_features, dtype=np.float64).reshape(len(recon_features), -1)
    b = np.asarray(truth_features, dtype=np.float64).reshape(len(truth_features), -1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def two_way(recon_features: np.ndarray, truth_features: np.ndarray) -> float:
    """For each reconstruction, the fraction of other stimuli it correlates with less than its own; chance 0.5."""
    c = correlation_matrix(recon_features, truth_features)
    n = len(c)
    if n < 2:
        return float("nan")
    own = np.diag(c)[:, None]
    wins = (c < own).sum(1)  # the diagonal never counts: c[i, i] < c[i, i] is false
    return float((wins / (n - 1)).mean())


def n_way_top1(recon_features: np.ndarray, truth_features: np.ndarray, n: int = 50, trials: int = 1000,
               seed: int = 0) -> tuple[float, int]:
    """Top-1 identification among the true stimulus and ``n - 1`` random distractors, over ``trials`` draws.
    Returns ``(accuracy, n)``; ``n`` shrinks to the number of stimuli when there are fewer. Chance is 1/n."""
    c = correlation_matrix(recon_features, truth_features)
    m = len(c)
    n = min(n, m)
    if n < 2:
        return float("nan"), n
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        i = int(rng.integers(m))
        others = rng.choice(np.delete(np.arange(m), i), size=n - 1, replace=False)
        hits += bool(c[i, i] > c[i, others].max())
    return hits / trials, n


def accuracy(predicted: list, truth: list) -> float:
    return float(np.mean([p == t for p, t in zip(predicted, truth)])) if truth else float("nan")

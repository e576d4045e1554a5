"""Closed-form ridge regression through one SVD, with K-fold cross-validated alpha.

With X = U S V^T (voxels z-scored), every alpha's coefficients are V diag(s / (s^2 + alpha)) U^T Y: one SVD per
fold prices the whole alpha grid.

Written by hand on purpose: the decoding papers fit voxels -> thousands of feature targets with one shared alpha,
and through the SVD every alpha of the grid costs one small matrix product per fold. scikit-learn's RidgeCV
refits per alpha for K-fold CV (its fast path is leave-one-out only); the tests check this against it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engines.core.errors import DataFileError

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-1, 7, 25))


@dataclass
class RidgeFit:
    alpha: float
    coef: np.ndarray  # [V, T] on z-scored voxels
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray  # the training targets' spread, for re-standardising predictions
    cv_error: dict[float, float] = field(default_factory=dict)  # alpha -> mean squared validation error

    def predict(self, x: np.ndarray) -> np.ndarray:
        return zscore(x, self.x_mean, self.x_std) @ self.coef + self.y_mean

    def predict_restandardised(self, x: np.ndarray) -> np.ndarray:
        """Predictions rescaled per target to the training targets' mean and std (as Brain-Diffuser does):
        ridge shrinks predictions towards the mean, and the generative model expects full-scale inputs."""
        return restandardise(self.predict(x), self.y_mean, self.y_std)


def zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (x - mean) / std


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    std = x.std(0)
    return mean, np.where(std > 1e-8, std, 1.0)


def restandardise(pred: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    if len(pred) < 2:
        return pred
    p_mean, p_std = _stats(pred)
    return (pred - p_mean) / p_std * std + mean


def fit_ridge(x: np.ndarray, y: np.ndarray, alphas=DEFAULT_ALPHAS, folds: int = 5, seed: int = 0,
              cancel=None) -> RidgeFit:
    """Fit ``y [N, T]`` from ``x [N, V]``; voxels are z-scored with training statistics (per fold during CV)."""
    return fit_ridge_blocks(x, {"y": y}, alphas, folds, seed, cancel)["y"]


def fit_ridge_blocks(x: np.ndarray, blocks: dict[str, np.ndarray], alphas=DEFAULT_ALPHAS, folds: int = 5,
                     seed: int = 0, cancel=None) -> dict[str, RidgeFit]:
    """One ridge fit per target block (each with its own cross-validated alpha), sharing every SVD of ``x``."""
    x = np.asarray(x, dtype=np.float64)
    blocks = {k: np.asarray(v, dtype=np.float64) for k, v in blocks.items()}
    for name, y in blocks.items():
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise DataFileError(f"Ridge needs x [N, V] and y [N, T] with the same N; got {x.shape} and {y.shape} "
                                f"for {name}.")
    if not np.isfinite(x).all():
        raise DataFileError("The voxel responses contain NaN or infinite values.",
                            hint="Replace them (e.g. with the voxel's mean) or drop those voxels.")
    n = len(x)
    alphas = sorted(float(a) for a in alphas)
    folds = max(2, min(folds, n))
    cv_error = {name: {a: 0.0 for a in alphas} for name in blocks}
    if len(alphas) > 1:
        order = np.random.default_rng(seed).permutation(n)
        for k in range(folds):
            if cancel is not None:
                cancel.raise_if_cancelled()
            val = order[k::folds]
            train = np.setdiff1d(order, val)
            xm, xs = _stats(x[train])
            u, s, vt = np.linalg.svd(zscore(x[train], xm, xs), full_matrices=False)
            proj = zscore(x[val], xm, xs) @ vt.T  # [n_val, rank]
            for name, y in blocks.items():
                ym = y[train].mean(0)
                uty = u.T @ (y[train] - ym)
                target = y[val] - ym
                for a in alphas:
                    pred = (proj * (s / (s ** 2 + a))) @ uty
                    cv_error[name][a] += float(((pred - target) ** 2).mean()) / folds
    xm, xs = _stats(x)
    u, s, vt = np.linalg.svd(zscore(x, xm, xs), full_matrices=False)
    fits = {}
    for name, y in blocks.items():
        best = min(alphas, key=lambda a: cv_error[name][a])
        ym, ys = _stats(y)
        coef = vt.T @ ((s / (s ** 2 + best))[:, None] * (u.T @ (y - ym)))
        fits[name] = RidgeFit(alpha=best, coef=coef, x_mean=xm, x_std=xs, y_mean=ym, y_std=ys, cv_error=cv_error[name])
    return fits

"""Simulated fMRI: a voxel flat map with a known encoding model.

"Early visual" voxels have Gaussian population receptive fields over the image model's VAE latent grid; the pRF
centre moves smoothly across the flat map (a retinotopic map) and its size grows with eccentricity; each voxel
weighs the latent channels with its own random weights. "Ventral" voxels respond to the stimulus' caption
embedding through tuning that varies smoothly across cortex (category patches). Noise is spatially smooth, at a
chosen SNR (signal variance / noise variance per voxel, single trial); test responses average R repeats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from engines.core.errors import RequestError
from engines.core.requests.decode import MAX_VOXELS, MIN_VOXELS



@dataclass
class FlatMap:
    rows: int
    cols: int
    early_cols: int  # columns [0, early_cols) are early visual cortex, the rest ventral
    n_voxels: int

    @classmethod
    def for_voxels(cls, n_voxels: int, early_fraction: float = 0.6) -> "FlatMap":
        rows = max(4, int(round(np.sqrt(n_voxels / 1.6))))
        cols = int(np.ceil(n_voxels / rows))
        return cls(rows, cols, max(1, min(cols - 1, int(round(cols * early_fraction)))), n_voxels)

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        index = np.arange(self.n_voxels)
        return index // self.cols, index % self.cols

    @property
    def early(self) -> np.ndarray:
        return self.coords()[1] < self.early_cols

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        """``values [..., V]`` laid out on the map, ``[..., rows, cols]``; cells without a voxel are NaN."""
        values = np.asarray(values, dtype=np.float64)
        grid = np.full(values.shape[:-1] + (self.rows * self.cols,), np.nan)
        grid[..., :self.n_voxels] = values
        return grid.reshape(values.shape[:-1] + (self.rows, self.cols))


@dataclass
class EncodingModel:
    flatmap: FlatMap
    weights: np.ndarray  # [V, F]: F = latent features (C*h*w) + embedding dims
    latent_size: int
    centres: np.ndarray  # [V_early, 2] pRF centre (x, y) in latent cells
    sizes: np.ndarray  # [V_early] pRF sigma in latent cells
    signal_mean: np.ndarray | None = None
    signal_std: np.ndarray | None = None

    def signal(self, latents: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        """Noise-free responses ``[N, V]``, scaled per voxel by the statistics of the first set it sees (the
        training set), so train and test share one scale."""
        features = np.concatenate([latents.reshape(len(latents), -1), embeddings], axis=1)
        raw = features @ self.weights.T
        if self.signal_mean is None:
            self.signal_mean = raw.mean(0)
            std = raw.std(0)
            self.signal_std = np.where(std > 1e-12, std, 1.0)
        return (raw - self.signal_mean) / self.signal_std


def build(n_voxels: int, latent_shape: tuple[int, int, int], embed_dim: int, seed: int,
          early_fraction: float = 0.6) -> EncodingModel:
    if not MIN_VOXELS <= n_voxels <= MAX_VOXELS:
        raise RequestError(f"Field 'voxels' is {n_voxels}.", hint=f"Use {MIN_VOXELS} to {MAX_VOXELS} voxels.")
    rng = np.random.default_rng(seed)
    fm = FlatMap.for_voxels(n_voxels, early_fraction)
    rows, cols = fm.coords()
    early = cols < fm.early_cols
    channels, h, w = latent_shape
    n_latent = channels * h * w

    # Retinotopy: map position -> visual field position, with a gentle warp so it is not a plain grid.
    u = cols[early] / max(1, fm.early_cols - 1)
    v = rows[early] / max(1, fm.rows - 1)
    x = np.clip(u + 0.04 * np.sin(2 * np.pi * v), 0, 1) * (w - 1)
    y = np.clip(v + 0.04 * np.sin(2 * np.pi * u), 0, 1) * (h - 1)
    ecc = np.hypot(x / (w - 1) - 0.5, y / (h - 1) - 0.5)
    sizes = 0.5 + 1.6 * ecc * (w / 16)
    gy, gx = np.mgrid[0:h, 0:w]
    prf = np.exp(-((gx[None] - x[:, None, None]) ** 2 + (gy[None] - y[:, None, None]) ** 2) / (2 * sizes[:, None, None] ** 2))
    prf /= prf.sum((1, 2), keepdims=True)
    channel_w = rng.normal(size=(int(early.sum()), channels))
    w_early = (channel_w[:, :, None, None] * prf[:, None]).reshape(-1, n_latent)

    # Ventral tuning: a random field per embedding dimension, smoothed across the ventral part of the map.
    ventral_cols = fm.cols - fm.early_cols
    field = rng.normal(size=(embed_dim, fm.rows, ventral_cols))
    field = gaussian_filter(field, sigma=(0, 2.0, 2.0), mode="reflect")
    field /= field.std(axis=0, keepdims=True) + 1e-12
    tuning = field[:, rows[~early], cols[~early] - fm.early_cols].T  # [V_ventral, D]

    weights = np.zeros((n_voxels, n_latent + embed_dim))
    weights[early, :n_latent] = w_early
    weights[~early, n_latent:] = tuning
    return EncodingModel(fm, weights, w, np.stack([x, y], 1), sizes)


def noise(flatmap: FlatMap, count: int, rng: np.random.Generator, smooth: float = 1.0) -> np.ndarray:
    """Spatially smooth Gaussian noise ``[count, V]`` with unit variance per voxel."""
    white = rng.normal(size=(count, flatmap.rows, flatmap.cols))
    field = gaussian_filter(white, sigma=(0, smooth, smooth), mode="wrap")
    field /= field.std()
    return field.reshape(count, -1)[:, :flatmap.n_voxels]


def measure(model: EncodingModel, signal: np.ndarray, snr: float, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """``signal`` plus noise at ``snr``, averaged over ``repeats`` trials."""
    if not snr > 0:
        raise RequestError(f"Field 'snr' is {snr!r}.", hint="Use a positive signal-to-noise ratio, e.g. 0.5.")
    if repeats < 1:
        raise RequestError(f"Field 'repeats' is {repeats!r}.", hint="Use 1 or more repeats.")
    total = np.zeros_like(signal)
    for _ in range(repeats):
        total += noise(model.flatmap, len(signal), rng)
    return signal + total / repeats / np.sqrt(snr)


def heatmap(flatmap: FlatMap, pattern: np.ndarray, scale: int = 3) -> np.ndarray:
    """An RGB uint8 flat-map image of one response pattern: blue (below mean) to red (above), grey where the map
    has no voxel, a white line between early and ventral cortex."""
    grid = flatmap.to_grid(pattern)
    finite = grid[np.isfinite(grid)]
    lim = max(float(np.percentile(np.abs(finite - finite.mean()), 98)), 1e-9) if finite.size else 1.0
    t = np.clip((np.nan_to_num(grid - (finite.mean() if finite.size else 0.0)) / lim + 1) / 2, 0, 1)
    # a diverging blue-white-red map (RdBu-like), by hand: two linear ramps
    lo, mid, hi = np.array([40, 70, 200]), np.array([245, 245, 245]), np.array([200, 40, 40])
    rgb = np.where(t[..., None] < 0.5, lo + (mid - lo) * (t[..., None] / 0.5), mid + (hi - mid) * ((t[..., None] - 0.5) / 0.5))
    rgb[~np.isfinite(grid)] = (90, 90, 90)
    if 0 < flatmap.early_cols < flatmap.cols:
        rgb = np.insert(rgb, flatmap.early_cols, (255, 255, 255), axis=1)
    rgb = rgb.astype(np.uint8)
    return np.kron(rgb, np.ones((scale, scale, 1), dtype=np.uint8))

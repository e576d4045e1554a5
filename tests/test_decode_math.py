"""Decode's numerical core without any model: ridge against references, cross-validated alpha, the simulated
fMRI's properties, and the metrics on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from engines.decode import metrics as M
from engines.decode import simulate
from engines.decode.ridge import fit_ridge, fit_ridge_blocks, restandardise


def _linear_data(snr: float, n=300, v=400, t=20, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, t))
    w = rng.normal(size=(t, v))
    x = y @ w / np.sqrt(t) + rng.normal(size=(n, v)) / np.sqrt(snr)
    return x, y


def test_ridge_matches_scikit_learn_and_the_normal_equations():
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    x, y = _linear_data(1.0, n=120, v=300)
    fit = fit_ridge(x, y, alphas=[37.0])
    xz = StandardScaler().fit_transform(x)
    reference = Ridge(alpha=37.0).fit(xz, y)
    assert np.allclose(fit.predict(x), reference.predict(xz), atol=1e-8)
    # the same coefficients from a direct solve of (X^T X + aI) b = X^T y
    yc = y - y.mean(0)
    direct = np.linalg.solve(xz.T @ xz + 37.0 * np.eye(xz.shape[1]), xz.T @ yc)
    assert np.allclose(fit.coef, direct, atol=1e-8)


def test_cross_validation_picks_a_larger_alpha_at_lower_snr():
    alphas = [fit_ridge(*_linear_data(snr)).alpha for snr in (10.0, 0.3, 0.01)]
    assert alphas[0] < alphas[1] < alphas[2], alphas
    fit = fit_ridge(*_linear_data(0.01))
    assert fit.cv_error[fit.alpha] == min(fit.cv_error.values())


def test_blocks_share_the_svd_but_keep_their_own_alpha():
    x, y = _linear_data(1.0)
    noise = np.random.default_rng(5).normal(size=(len(x), 7))  # unpredictable targets want heavy shrinkage
    fits = fit_ridge_blocks(x, {"signal": y, "noise": noise})
    assert fits["signal"].alpha < fits["noise"].alpha
    alone = fit_ridge(x, y)
    assert fits["signal"].alpha == alone.alpha and np.allclose(fits["signal"].coef, alone.coef)


def test_restandardise_gives_the_training_targets_mean_and_spread():
    rng = np.random.default_rng(1)
    pred = rng.normal(0.1, 0.05, size=(40, 3))
    out = restandardise(pred, np.array([1.0, -2.0, 0.0]), np.array([2.0, 0.5, 1.0]))
    assert np.allclose(out.mean(0), [1.0, -2.0, 0.0]) and np.allclose(out.std(0), [2.0, 0.5, 1.0])


def test_ridge_rejects_nan_voxels_with_a_clear_error():
    from engines.core.errors import DataFileError

    x, y = _linear_data(1.0, n=20, v=10)
    x[3, 4] = np.nan
    with pytest.raises(DataFileError, match="NaN"):
        fit_ridge(x, y)


# -- metrics -------------------------------------------------------------------
def _images(n=12, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(n, 1, 1, 3))
    return np.clip(base + rng.integers(-60, 60, size=(n, 24, 24, 3)), 0, 255).astype(np.uint8)


def test_identical_images_score_perfectly():
    images = _images()
    assert M.pixcorr(images, images) == pytest.approx(1.0)
    assert M.ssim(images, images) == pytest.approx(1.0)
    assert M.two_way(images, images) == 1.0
    assert M.n_way_top1(images, images, n=5)[0] == 1.0


def test_metrics_on_hand_computed_cases():
    a = np.array([[[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]]])  # one 1x2 image
    assert M.pixcorr(a, 1.0 - a) == pytest.approx(-1.0)
    # two-way by hand: reconstruction 0 is closest to stimulus 0 (beats 2 of 2 others), reconstruction 1 is closer
    # to stimulus 2 than to its own (beats 1 of 2), reconstruction 2 beats nobody.
    truth = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    recon = np.array([[1.0, 0.1, 0.0, 0.0], [0.0, 0.5, 0.9, 0.0], [0.3, 0.1, 0.0, 1.0]])
    c = M.correlation_matrix(recon, truth)
    assert c[0, 0] > c[0, 1] and c[1, 2] > c[1, 1] > c[1, 0] and c[2, 0] > c[2, 1] > c[2, 2]
    assert M.two_way(recon, truth) == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    # SSIM of a constant shift: luminance term only, (2*mu1*mu2 + C1) / (mu1^2 + mu2^2 + C1) with C1 = (0.01)^2
    flat1 = np.full((1, 16, 16, 3), 0.5)
    flat2 = np.full((1, 16, 16, 3), 0.3)
    c1 = 0.01 ** 2
    assert M.ssim(flat1, flat2) == pytest.approx((2 * 0.5 * 0.3 + c1) / (0.5 ** 2 + 0.3 ** 2 + c1), rel=1e-3)


def test_unrelated_reconstructions_sit_at_chance():
    rng = np.random.default_rng(3)
    truth, recon = rng.normal(size=(200, 50)), rng.normal(size=(200, 50))
    assert M.two_way(recon, truth) == pytest.approx(0.5, abs=0.03)
    acc, n = M.n_way_top1(recon, truth, n=10, trials=2000)
    assert n == 10 and acc == pytest.approx(0.1, abs=0.03)
    permuted = truth[rng.permutation(200)]
    assert M.two_way(permuted, truth) == pytest.approx(0.5, abs=0.05)


# -- the simulated fMRI ------------------------------------------------------------
def test_encoding_model_is_seeded_retinotopic_and_noise_is_smooth_at_the_requested_snr():
    a = simulate.build(1200, (4, 8, 8), 16, seed=4)
    b = simulate.build(1200, (4, 8, 8), 16, seed=4)
    assert np.array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, simulate.build(1200, (4, 8, 8), 16, seed=5).weights)
    # Retinotopy: neighbouring early voxels (same row, next column) have nearby pRF centres.
    fm = a.flatmap
    rows, cols = fm.coords()
    early = np.nonzero(cols < fm.early_cols)[0]
    step = np.linalg.norm(np.diff(a.centres, axis=0), axis=1)[np.diff(rows[early]) == 0]
    assert step.max() < 1.0 and a.centres[:, 0].max() - a.centres[:, 0].min() > 6
    # Noise: unit variance, correlated between horizontal neighbours.
    rng = np.random.default_rng(0)
    n = simulate.noise(fm, 400, rng)
    assert n.std() == pytest.approx(1.0, abs=0.05)
    grid = fm.to_grid(n)
    r = np.corrcoef(grid[:, :, :-1][np.isfinite(grid[:, :, 1:]) & np.isfinite(grid[:, :, :-1])],
                    grid[:, :, 1:][np.isfinite(grid[:, :, 1:]) & np.isfinite(grid[:, :, :-1])])[0, 1]
    assert r > 0.3
    # SNR and repeats: measured noise variance is 1 / (snr * repeats) relative to unit signal variance.
    latents, emb = rng.normal(size=(300, 4, 8, 8)), rng.normal(size=(300, 16))
    signal = a.signal(latents, emb)
    assert signal.std(0) == pytest.approx(np.ones(1200), abs=1e-6)
    measured = simulate.measure(a, signal, snr=0.25, repeats=4, rng=rng)
    assert (measured - signal).var() == pytest.approx(1.0, rel=0.1)
    measured = simulate.measure(a, signal, snr=0.25, repeats=1, rng=rng)
    assert (measured - signal).var() == pytest.approx(4.0, rel=0.1)


def test_flat_map_heatmap_shows_the_early_ventral_border():
    fm = simulate.FlatMap.for_voxels(1000)
    image = simulate.heatmap(fm, np.linspace(-1, 1, 1000), scale=2)
    assert image.dtype == np.uint8 and image.shape == (fm.rows * 2, (fm.cols + 1) * 2, 3)
    assert (image[:, fm.early_cols * 2] == 255).all()


def test_bad_simulation_settings_name_the_field():
    from engines.core.errors import RequestError

    with pytest.raises(RequestError, match="voxels"):
        simulate.build(10, (4, 8, 8), 16, seed=0)
    model = simulate.build(300, (4, 8, 8), 16, seed=0)
    with pytest.raises(RequestError, match="snr"):
        simulate.measure(model, np.zeros((2, 300)), snr=0, repeats=1, rng=np.random.default_rng(0))

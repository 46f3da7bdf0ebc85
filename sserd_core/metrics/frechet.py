"""Fréchet distance between two sets of feature vectors (the "F" in FID / FAD / ID-FD).

For Gaussians ``N(mu1, S1)`` and ``N(mu2, S2)`` the squared 2-Wasserstein (Fréchet)
distance has the closed form::

    d² = |mu1 - mu2|² + tr(S1 + S2 - 2 (S1^½ S2 S1^½)^½)

:func:`frechet_distance` evaluates it from means and covariances;
:func:`frechet_distance_features` fits the Gaussians to feature sets ``[N, D]`` (sample
mean and unbiased covariance, as pytorch-fid and the FAD of the talking-face literature
do) — the value returned is ``d²`` (that is what those papers report under "FID"/"FAD").
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..errors import SSERDError


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    a = (a + a.T) / 2
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (``mu`` ``[D]``, ``sigma`` ``[D, D]``).

    Uses ``tr((S1^½ S2 S1^½)^½)`` with symmetric PSD square roots, which is exact and
    numerically stable also for the rank-deficient covariances of small sample sets.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    r1 = _sqrtm_psd(s1)
    middle = _sqrtm_psd(r1 @ s2 @ r1)
    diff = mu1 - mu2
    d2 = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(middle))
    return max(d2, 0.0)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean ``[D]`` and unbiased covariance ``[D, D]`` of ``features`` ``[N, D]`` (rows with NaN dropped)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {x.shape}")
    x = x[np.isfinite(x).all(1)]
    if len(x) < 2:
        raise SSERDError("A Fréchet distance needs at least 2 frames with a detected face on each side.")
    return x.mean(0), np.cov(x, rowvar=False)


def frechet_distance_features(real: np.ndarray, generated: np.ndarray) -> float:
    """Squared Fréchet distance between Gaussians fitted to ``real`` ``[N, D]`` and ``generated`` ``[M, D]``."""
    m1, s1 = gaussian_stats(real)
    m2, s2 = gaussian_stats(generated)
    return frechet_distance(m1, s1, m2, s2)


def frechet_distance_scipy(mu1, sigma1, mu2, sigma2) -> float:
    """The textbook form with ``scipy.linalg.sqrtm(S1 @ S2)`` (as in pytorch-fid); used to cross-check."""
    covmean = linalg.sqrtm(np.asarray(sigma1, np.float64) @ np.asarray(sigma2, np.float64))
    covmean = np.real(covmean)
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))

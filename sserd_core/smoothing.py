"""Smoothing over time, defined once: a centred moving average and a Gaussian, both continuing the
ends with the first and last values (so a smoothed track neither lags nor sags at its ends)."""

from __future__ import annotations

import numpy as np


def moving_average(x: np.ndarray, window: int, dtype=np.float64) -> np.ndarray:
    """``x`` ``[N]`` or ``[N, K]`` averaged over ``window`` frames (odd) centred on each frame, along the
    first axis; the kernel (and so the result) is of ``dtype``."""
    k = np.ones(window, dtype) / window
    pad = window // 2
    x = np.asarray(x)
    if x.ndim == 1:
        return np.convolve(np.pad(x, pad, mode="edge"), k, mode="valid")[: len(x)]
    padded = np.pad(x, ((pad, pad), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, j], k, mode="valid")[: len(x)] for j in range(x.shape[1])], 1)


def gaussian_over_time(x: np.ndarray, sigma: float) -> np.ndarray:
    """``x`` ``[T, ...]`` filtered along its first axis by a Gaussian of ``sigma`` frames, cut at 4 sigma,
    the ends continued with the first and last values: ``scipy.ndimage.gaussian_filter1d(x, sigma, axis=0,
    mode="nearest")`` (tests/test_core_units.py checks the two agree), written out here because importing
    ``scipy.ndimage`` costs ~0.2 s of every edit's start-up."""
    r = int(4.0 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(np.asarray(x, np.float64), [(r, r)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    out = np.zeros(x.shape, np.float64)
    for j, kj in enumerate(k):
        out += kj * pad[j:j + len(x)]
    return out.astype(x.dtype)

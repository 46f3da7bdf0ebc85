"""Speech-content proxies from 68-point landmarks: M-LMD and mouth-opening correlation.

The paper measures lip sync with SyncNet (LSE-D). Without SyncNet weights these proxies
say whether an edit kept the *source's* mouth motion — what "speech-preserving" means:

- **M-LMD** (mouth landmark distance): mean Euclidean distance between the 20 mouth
  landmarks (48-67) of the generated and the source frame, after each face is mapped to
  the canonical face space of :mod:`sserd_core.geometry` (eye centres at (∓0.5, 0), so the
  unit is the inter-ocular distance, "IOD"). Lower is better; 0 for identical mouths. Emotion edits legitimately
  move the lip corners a little (a smile), so an emotion edit is not expected to reach 0.
- **M-Open corr** (mouth-opening correlation): Pearson correlation over time between
  the inner-lip opening of the generated and of the source clip. 1 = the mouth opens and
  closes exactly when the source's does; a mouth that does not move scores 0 (by
  convention: a constant signal carries no speech).

Frames are paired by index (generated frame i ↔ source frame i); frames where either
face was not found are skipped.
"""

from __future__ import annotations

import numpy as np

from ..geometry import INNER_LIP_PAIRS, MOUTH, canonicalise  # noqa: F401  (defined once, re-exported)
from ..geometry import mouth_opening as _opening


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(a), len(b))
    return np.asarray(a[:n], np.float64), np.asarray(b[:n], np.float64)


def mouth_landmark_distances(generated: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Per-frame M-LMD ``[N]`` (IOD units) between landmark sequences ``[N, 68, 2]`` in pixels; NaN where a face is missing."""
    g, s = _pair(canonicalise(generated), canonicalise(source))
    return np.linalg.norm(g[:, MOUTH] - s[:, MOUTH], axis=-1).mean(-1)


def mouth_landmark_distance(generated: np.ndarray, source: np.ndarray) -> float:
    """M-LMD: mean over frames of :func:`mouth_landmark_distances` (NaN if no frame has both faces)."""
    d = mouth_landmark_distances(generated, source)
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening per frame ``[N]`` in IOD units, from landmarks ``[N, 68, 2]`` (pixels): the same
    quantity as the editor's content and ``RenderResult.*_mouth`` (:func:`sserd_core.geometry.mouth_opening`)."""
    return np.atleast_1d(np.asarray(_opening(landmarks), np.float64))


def opening_correlation(generated_opening: np.ndarray, source_opening: np.ndarray, eps: float = 1e-4) -> float:
    """Pearson correlation of two mouth-opening series (paired by index; NaN frames skipped).

    Returns 0.0 when either series is (numerically) constant — a still mouth carries no
    speech — and NaN when fewer than 3 frames have both values.
    """
    g, s = _pair(np.asarray(generated_opening), np.asarray(source_opening))
    ok = np.isfinite(g) & np.isfinite(s)
    if ok.sum() < 3:
        return float("nan")
    g, s = g[ok], s[ok]
    if g.std() < eps or s.std() < eps:
        return 0.0
    return float(np.corrcoef(g, s)[0, 1])

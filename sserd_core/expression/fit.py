"""The emotion fit: which mix of emotions explains a change of the emotion features (non-negative
least squares on the emotions' feature signatures), and how a face read against the population
neutral (a reference) is weighted and brought to full strength."""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np

from .. import geometry
from ..geometry import to_canonical
from ..emotion import EMOTIONS, normalise
from .action_units import EMOTION_BASIS
from .features import (FEATURES, _FEATURE_WEIGHT, emotion_features, population_neutral)


@functools.lru_cache(maxsize=1)
def feature_signatures() -> np.ndarray:
    """``[6, 9]``: how each non-neutral emotion at intensity 1 changes :func:`emotion_features`."""
    N = population_neutral()
    f0 = emotion_features(N)
    return np.stack([emotion_features(N + EMOTION_BASIS[i]) - f0 for i in range(1, len(EMOTIONS))])


@functools.lru_cache(maxsize=8)
def _nnls_candidates(weights: Optional[tuple] = None) -> tuple[np.ndarray, np.ndarray]:
    """For every subset of the 6 (weighted) signatures: the matrix ``[64, 6, 9]`` that gives the least-squares
    coefficients on that subset (zeros off it) for a feature change, and the signatures ``[6, 9]``.
    ``weights``: the features' weights (:data:`_FEATURE_WEIGHT` when None)."""
    S = (feature_signatures() * (_FEATURE_WEIGHT if weights is None else np.asarray(weights))).astype(np.float64)
    k = S.shape[0]
    P = np.zeros((2 ** k, k, S.shape[1]))
    for m in range(1, 2 ** k):
        on = [i for i in range(k) if m >> i & 1]
        P[m][on] = np.linalg.pinv(S[on].T)
    return P, S


def _nnls(b: np.ndarray, weights: Optional[tuple] = None) -> np.ndarray:
    """Non-negative least squares ``min ||S.T w - b||, w >= 0`` for the 6 emotion signatures, exactly.

    With 6 unknowns every support can be tried: the solution is the least-squares fit on its own
    support, so it is the best of the fits that come out non-negative (the empty one always does).
    This is what ``scipy.optimize.nnls`` computes (tests/test_core_units.py checks the two agree);
    it is done here because importing ``scipy.optimize`` costs 0.3-0.5 s of every edit's start-up,
    which every frame waits for."""
    P, S = _nnls_candidates(weights)
    W = P @ b  # [64, 6]
    ok = (W >= -1e-12).all(1)
    W = np.where(ok[:, None], np.maximum(W, 0.0), 0.0)
    res = ((W @ S - b) ** 2).sum(1)
    return W[int(np.argmin(np.where(ok, res, np.inf)))]


def fit_emotion(feature_delta: np.ndarray, dead_zone: float = 0.0, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Emotion vector ``[7]`` whose signature best explains a feature change (non-negative least squares).

    ``dead_zone`` is subtracted from every intensity (noise / personal idiosyncrasy floor); ``weights``:
    each feature's weight in the fit (:data:`_FEATURE_WEIGHT` by default).
    """
    key = None if weights is None else tuple(float(x) for x in np.round(np.asarray(weights, np.float64), 3))
    wt = _FEATURE_WEIGHT if key is None else np.asarray(key, np.float32)  # the weights the candidates were made with
    w = _nnls((np.asarray(feature_delta) * wt).astype(np.float64), key)
    w = np.clip(w - dead_zone, 0.0, 1.0)
    if w.sum() > 1.0:
        w = w / w.sum()
    return normalise(np.concatenate([[0.0], w]).astype(np.float32))


def measure_landmarks(landmarks: np.ndarray, neutral_features: Optional[np.ndarray] = None,
                      dead_zone: float = 0.12) -> np.ndarray:
    """Emotion vector ``[7]`` shown by one face's 68 landmarks (frame pixels).

    Relative to ``neutral_features`` (the person's own neutral, when known) or else to
    the population neutral face, with the features a still face cannot tell apart weighted
    as for a reference (:func:`reference_weights`).
    """
    X = to_canonical(landmarks)
    f = emotion_features(X)
    if neutral_features is None:  # against the population neutral: read as a reference is
        return fit_emotion(f - emotion_features(population_neutral()), dead_zone, weights=reference_weights(X))
    return fit_emotion(f - neutral_features, dead_zone)


def reference_target(measured: np.ndarray, full_at: float = 0.3, floor: float = 0.05) -> np.ndarray:
    """The target a reference face asks for: its mix of emotions, at full strength.

    A label at intensity 1 asks for a full expression; a reference photo of a clearly
    smiling face must land as strongly, although measured against a population neutral
    (and with a person-to-person margin taken off) it reads as a partial expression. So
    the measured mix ``[7]`` is kept and its total intensity is stretched: a total of
    ``full_at`` or more becomes 1, a smaller one proportionally less, and below ``floor``
    the reference counts as neutral.
    """
    v = np.asarray(measured, np.float32)
    total = float(v[1:].sum())
    out = np.zeros_like(v)
    if total > floor:
        out[1:] = v[1:] / total * min(1.0, (total - floor) / (full_at - floor))
    return normalise(out)


#: Reading a face against the population neutral (a reference photo, a driving clip's frame), two
#: features are left out or faded, both because a still face cannot tell them from something else:
#:
#: - the lip corners' height above the middle of the lip gap fades out as the lips part (inner-lip
#:   opening 0.10-0.25 IOD): with the lips apart the jaw, not the smile, sets where the corners sit
#:   against the gap (a wide-open laugh and a speaking mouth put them at its middle alike), and the
#:   fit took a laugh's "missing" corner lift for sadness;
#: - the nose wings' height under the eye line is not used: a head tilted 15 degrees back or forward
#:   moves it by roughly 0.1 IOD (an estimate from the nose base sitting ~0.3 IOD in front of the
#:   eyes), about what a full nose wrinkle does (0.09), and people's neutral faces differ by as much
#:   (IDENTITY_SPREAD); a laughing woman with her head back read as 31 % disgusted. Disgust is still read from the raised upper lip, the lowered brows
#:   and the lip corners.
#:
#: On the real clips (docs/EDIT_STRENGTH.md; the probe is in the git history as bench/reference_strength.py) the laugh as a reference went
#: from happy 0.36 + disgusted 0.31 + sad 0.17 + surprised 0.16 to happy 0.80 + surprised 0.18.
REFERENCE_OPEN_LIPS = (0.10, 0.15)


def reference_weights(X: np.ndarray) -> np.ndarray:
    """Feature weights ``[9]`` for fitting a face (canonical landmarks ``X``) against the population neutral."""
    start, span = REFERENCE_OPEN_LIPS
    w = _FEATURE_WEIGHT.copy()
    opening = float(geometry.opening_of_canonical(X))
    w[FEATURES.index("lip_corner")] *= float(np.clip(1.0 - (opening - start) / span, 0.0, 1.0))
    w[FEATURES.index("nose_wing")] = 0.0
    return w

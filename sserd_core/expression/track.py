"""The content track of a clip: speech content, the person's neutral face and the per-frame source
emotion, split from a tracked face's landmarks."""

from __future__ import annotations

import numpy as np

from ..emotion import EMOTIONS, normalise
from ..geometry import apply, canonical_transform
from ..smoothing import moving_average
from .action_units import emotion_displacement
from .features import (FEATURES, IDENTITY_SPREAD, content_features, emotion_features, identity_tolerant,
                       population_neutral)
from .fit import feature_signatures, fit_emotion


def _smooth(x: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Moving average over ``window`` frames of the valid rows of ``x`` ``[N, K]``."""
    out = x.copy()
    if window <= 1 or valid.sum() == 0:
        return out
    idx = np.where(valid)[0]
    out[idx] = moving_average(x[idx], window)
    return out


#: a lip gap that never closes: (opening of the 10 % most closed frames where it starts to count,
#: the span over which it reaches full weight, both IOD units; the happy intensity it adds at full weight)
_HELD_OPEN = (0.05, 0.15, 0.6)
#: largest plausible change of an emotion feature per unit of lip opening (both in IOD units)
_MAX_COUPLING = 0.3


def _high_pass(x: np.ndarray, window: int) -> np.ndarray:
    """``x`` ``[N, K]`` minus its moving average over ``window`` frames: the syllable-rate part."""
    return x - moving_average(x, window)


def build_content_track(video, times: np.ndarray, landmarks: np.ndarray, found: np.ndarray, face_index: int = 0,
                        neutral_dead_zone: float = 0.05, calm_fraction: float = 0.25):
    """Split a tracked face into speech content, the person's neutral face and per-frame source emotion.

    1. canonical landmarks per frame; content = (inner-lip opening, mouth width).
    2. emotion features per frame, with their linear dependence on the content removed so
       speech does not read as emotion. The dependence is estimated from the fast (syllable-
       rate) part of both signals only: an emotion changes slower than speech, so a smile that
       opens the lips does not teach the regression that a wide mouth is speech.
    3. the person's neutral = the median of the clip's calmest frames (the ``calm_fraction``
       whose features are closest to the population neutral), minus any emotion those still
       show beyond the person-to-person spread of neutral faces (:data:`IDENTITY_SPREAD`) and
       ``neutral_dead_zone`` (a clip that laughs throughout is recognised as happy
       and can be edited to neutral; a clip that starts neutral gets its own neutral face).
    4. per-frame source emotion relative to that neutral, smoothed over ~0.7 s: emotions
       change slower than syllables.
    """
    from ..content import ContentTrack

    n = len(found)
    times = np.asarray(times, np.float32)[:n]
    T = np.zeros((n, 2, 3), np.float32)
    X = np.full((n, 68, 2), np.nan, np.float32)
    content = np.full((n, 2), np.nan, np.float32)
    feats = np.full((n, len(FEATURES)), np.nan, np.float32)
    for i in np.where(found)[0]:
        T[i] = canonical_transform(landmarks[i])
        X[i] = apply(T[i], landmarks[i])
        content[i] = content_features(X[i])
        feats[i] = emotion_features(X[i])
    idx = np.where(found)[0]
    fps = float(getattr(video, "fps_float", 25.0) or 25.0)
    # 2. remove speech-driven variation from the features: how the lip opening moves them, learnt
    # from the syllable-rate part of both signals, with a ridge towards zero and a cap, so a clip
    # without fast lip motion learns nothing. The mouth width is not used: a smile is mostly width.
    c_med = np.median(content[idx], 0).astype(np.float32)
    C = content[idx] - c_med
    F = feats[idx]
    coupling = np.zeros((2, len(FEATURES)), np.float32)
    hp_window = max(3, int(round(0.3 * fps)) | 1)
    if len(idx) >= 2 * hp_window:
        oh, Fh = _high_pass(C[:, :1], hp_window)[:, 0], _high_pass(F, hp_window)
        if oh.std() > 5e-3:
            lam = len(idx) * 0.01 ** 2
            coupling[0] = np.clip(oh @ Fh / (oh @ oh + lam), -_MAX_COUPLING, _MAX_COUPLING)
            F = F - C @ coupling
            feats[idx] = F
    # 3. the person's neutral, from the calmest frames
    f_pop = emotion_features(population_neutral())
    sig = feature_signatures()
    intensity = np.array([fit_emotion(identity_tolerant(f - f_pop))[1:].sum() for f in F])
    calm = intensity <= np.quantile(intensity, calm_fraction)
    median_face = np.median(X[idx][calm], 0)
    f_calm = np.median(F[calm], 0)
    shown = fit_emotion(identity_tolerant(f_calm - f_pop), dead_zone=neutral_dead_zone)
    # lips held apart through the whole clip: speech closes the lips between words, a laugh or a
    # grin does not. With corners that are not turned down, that is a smile the geometry of the
    # calm frames alone under-reads (open-mouthed laughs keep the corners level with the gap).
    held_open = float(np.clip((np.quantile(content[idx, 0], 0.1) - _HELD_OPEN[0]) / _HELD_OPEN[1], 0.0, 1.0))
    lip_i = FEATURES.index("lip_corner")
    if held_open > 0 and f_calm[lip_i] - f_pop[lip_i] > -IDENTITY_SPREAD[lip_i]:
        happy = EMOTIONS.index("happy")
        shown[happy] = min(1.0 - float(shown[1:].sum() - shown[happy]), shown[happy] + _HELD_OPEN[2] * held_open)
        shown = normalise(shown)
    neutral = (median_face - emotion_displacement(shown)).astype(np.float32)
    neutral_f = f_calm - shown[1:] @ sig
    # 4. per-frame source emotion
    src = np.zeros((n, len(EMOTIONS)), np.float32)
    src[:, 0] = 1.0
    for i in idx:
        src[i] = fit_emotion(feats[i] - neutral_f, dead_zone=0.1)
    window = max(1, int(round(0.7 * fps)) | 1)
    src = _smooth(src, found, window)
    src = np.stack([normalise(v) for v in src])
    return ContentTrack(video, times, landmarks.astype(np.float32), found.astype(bool), T, X, neutral, content,
                        src, neutral_f.astype(np.float32), face_index, coupling, c_med)

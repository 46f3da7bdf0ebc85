"""The expression model of the landmark backend: content vs emotion, in landmark space.

Every frame's 68 landmarks are mapped to a *canonical face space* by a similarity
transform fixed by the eye corners (eye centres at (∓0.5, 0), unit = inter-ocular
distance, y down). In that space the expression is a displacement from the person's
neutral face, split into

- **content** (speech): jaw, inner-lip opening and mouth rounding. Never edited: the
  renderer pins the jaw and the inner-lip centres, and every emotion displacement moves
  upper and lower lip points together, so the lip gap of each frame is the source's.
- **emotion**: brows, lids, cheeks, nose and lip corners, as FACS action units (AUs).
  Each of the paper's 6 non-neutral emotions is a fixed combination of AU displacement
  fields (:data:`EMOTION_AUS`); an emotion vector's intensities weight them.

Measuring an emotion (of a reference face, or of the source to be able to remove it)
uses content-insensitive geometric features (brow heights, lid openings, nose-wing and
lip-corner heights...) and a non-negative least-squares fit of the emotions' feature
signatures. The signatures come from the very displacement fields the renderer applies,
so measuring what was rendered gives back what was asked for.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Optional

import numpy as np
from scipy.optimize import nnls

from .emotion import EMOTIONS, normalise

# ----------------------------------------------------------------------------- regions
JAW = list(range(0, 17))
BROW_R, BROW_L = list(range(17, 22)), list(range(22, 27))
NOSE_BRIDGE, NOSE_BASE = list(range(27, 31)), list(range(31, 36))
EYE_R, EYE_L = list(range(36, 42)), list(range(42, 48))
LIPS_OUTER, LIPS_INNER = list(range(48, 60)), list(range(60, 68))
MOUTH_CORNERS = [48, 54, 60, 64]
INNER_LIP_CENTRES = [62, 66]
#: points the renderer never moves (speech content + the face outline)
CONTENT_POINTS = JAW + INNER_LIP_CENTRES + [27, 28, 29, 30]
#: points emotion displacements may move
EMOTION_POINTS = BROW_R + BROW_L + EYE_R + EYE_L + NOSE_BASE + LIPS_OUTER + [60, 61, 63, 64, 65, 67]

# mirror pairs (subject's right ↔ left) for symmetric AU definitions
_MIRROR = {17: 26, 18: 25, 19: 24, 20: 23, 21: 22, 36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46,
           31: 35, 32: 34, 48: 54, 49: 53, 50: 52, 59: 55, 58: 56, 60: 64, 61: 63, 67: 65}
_RIGHT_SIDE = set(_MIRROR)  # subject's right = image left = smaller x in canonical space


def _au(spec: dict[int, tuple[float, float]]) -> np.ndarray:
    """Displacement field ``[68, 2]`` from ``{point: (outward, down)}`` on the subject's right side (mirrored)."""
    d = np.zeros((68, 2), np.float32)
    for i, (out, down) in spec.items():
        if i in _RIGHT_SIDE:
            d[i] = (-out, down)
            d[_MIRROR[i]] = (out, down)
        else:  # centre points: no outward component
            d[i] = (0.0, down)
    return d


#: FACS action units as displacement fields in canonical units (IOD = 1) at intensity 1.
ACTION_UNITS = {
    "AU1": _au({21: (0, -.11), 20: (0, -.075), 19: (0, -.04), 18: (0, -.02)}),                  # inner brow raiser
    "AU2": _au({17: (0, -.10), 18: (0, -.09), 19: (0, -.06), 20: (0, -.03)}),                   # outer brow raiser
    "AU4": _au({21: (-.045, .075), 20: (-.025, .075), 19: (-.01, .055), 18: (0, .03), 17: (0, .01),
                37: (0, .012), 38: (0, .015)}),                                                  # brow lowerer
    "AU5": _au({37: (0, -.045), 38: (0, -.045)}),                                               # upper lid raiser
    "AU6": _au({40: (0, -.03), 41: (0, -.035), 36: (0, -.01)}),                                 # cheek raiser
    "AU7": _au({40: (0, -.022), 41: (0, -.022), 37: (0, .012), 38: (0, .012)}),                 # lid tightener
    "AU9": _au({31: (0, -.055), 32: (0, -.04), 33: (0, -.03), 21: (0, .02),
                50: (0, -.035), 51: (0, -.03), 49: (0, -.02)}),                                  # nose wrinkler
    "AU12": _au({48: (.07, -.075), 60: (.07, -.075), 49: (.035, -.04), 59: (.035, -.04),
                 61: (.02, -.03), 67: (.02, -.03), 50: (.01, -.015), 58: (.01, -.015)}),         # lip corner puller
    "AU15": _au({48: (0, .065), 60: (0, .065), 49: (0, .03), 59: (0, .03), 61: (0, .02), 67: (0, .02)}),  # corner depressor
    "AU16": _au({58: (0, .02), 57: (0, .025)}),                                                  # lower lip depressor
    "AU20": _au({48: (.065, .01), 60: (.065, .01), 49: (.03, 0), 59: (.03, 0), 61: (.02, 0), 67: (.02, 0)}),  # stretcher
    "AU23": _au({48: (-.035, 0), 60: (-.035, 0), 49: (-.015, .01), 59: (-.015, -.01), 50: (0, .01),
                 51: (0, .01), 58: (0, -.01), 57: (0, -.01)}),                                   # lip tightener
}
#: The paper's emotions as AU combinations (after Ekman & Friesen's EMFACS). AU26 (jaw drop,
#: part of surprise) is left out on purpose: the jaw is speech content and is never edited.
EMOTION_AUS = {
    "angry": {"AU4": 1.0, "AU5": 0.5, "AU7": 1.0, "AU23": 1.0},
    "disgusted": {"AU9": 1.0, "AU15": 0.7, "AU16": 1.0, "AU4": 0.3},
    "fear": {"AU1": 1.0, "AU2": 1.0, "AU4": 0.5, "AU5": 1.0, "AU20": 1.0},
    "happy": {"AU6": 1.0, "AU12": 1.0},
    "sad": {"AU1": 1.0, "AU4": 0.6, "AU15": 1.0},
    "surprised": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0},
}


def emotion_field(name: str) -> np.ndarray:
    """Canonical displacement field ``[68, 2]`` of one emotion at intensity 1."""
    return sum(w * ACTION_UNITS[au] for au, w in EMOTION_AUS[name].items()).astype(np.float32)


#: ``[7, 68, 2]`` displacement basis in EMOTIONS order (neutral = zeros)
EMOTION_BASIS = np.stack([np.zeros((68, 2), np.float32)] + [emotion_field(e) for e in EMOTIONS[1:]])


def emotion_displacement(vector: np.ndarray) -> np.ndarray:
    """Canonical displacement ``[68, 2]`` of an emotion vector (intensities × basis)."""
    v = np.asarray(vector, np.float32)
    return np.tensordot(v[1:], EMOTION_BASIS[1:], axes=1)


# ----------------------------------------------------------------------------- alignment

def canonical_transform(landmarks: np.ndarray) -> np.ndarray:
    """Similarity ``[2, 3]`` mapping frame pixels → canonical face space (from the eye corners)."""
    lm = np.asarray(landmarks, np.float64)
    eye_r = (lm[36] + lm[39]) / 2
    eye_l = (lm[42] + lm[45]) / 2
    centre = (eye_r + eye_l) / 2
    d = eye_l - eye_r
    iod = max(1e-6, float(np.hypot(*d)))
    c, s = d / iod
    R = np.array([[c, s], [-s, c]]) / iod
    return np.hstack([R, (-R @ centre)[:, None]]).astype(np.float32)


def apply(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return (np.asarray(pts, np.float32) @ T[:, :2].T + T[:, 2]).astype(np.float32)


def to_canonical(landmarks: np.ndarray) -> np.ndarray:
    return apply(canonical_transform(landmarks), landmarks)


def displacement_to_frame(T: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Map a canonical displacement ``[K, 2]`` to frame pixels (linear part of ``T``'s inverse)."""
    return (np.asarray(delta, np.float32) @ np.linalg.inv(T[:, :2]).T).astype(np.float32)


# ----------------------------------------------------------------------------- features

def _eye_line(X):
    return X[[36, 39, 42, 45], 1].mean()


def content_features(X: np.ndarray) -> np.ndarray:
    """Speech content ``[2]`` of canonical landmarks: inner-lip opening and mouth width (IOD units)."""
    opening = np.mean([X[66, 1] - X[62, 1], X[67, 1] - X[61, 1], X[65, 1] - X[63, 1]])
    width = X[64, 0] - X[60, 0]
    return np.array([opening, width], np.float32)


FEATURES = ("inner_brow", "outer_brow", "brow_gap", "upper_lid", "lower_lid", "nose_wing", "lip_corner",
            "mouth_width", "upper_lip")
#: per-feature weight in the emotion fit (≈ 1 / typical landmark noise of that feature)
_FEATURE_WEIGHT = np.array([1.0, 1.0, 0.7, 1.3, 1.3, 1.0, 1.2, 0.5, 0.6], np.float32)


def emotion_features(X: np.ndarray) -> np.ndarray:
    """Content-insensitive geometric features ``[9]`` of canonical landmarks ``[68, 2]`` (IOD units).

    Heights are measured upwards (bigger = higher). ``lip_corner`` is the corners' height
    above the middle of the inner-lip gap, so opening the mouth does not read as an emotion.
    """
    ey = _eye_line(X)
    inner_brow = ey - X[[21, 22], 1].mean()
    outer_brow = ey - X[[17, 18, 25, 26], 1].mean()
    brow_gap = X[22, 0] - X[21, 0]
    upper_lid = (X[36, 1] + X[39, 1]) / 2 - X[[37, 38], 1].mean() + (X[42, 1] + X[45, 1]) / 2 - X[[43, 44], 1].mean()
    lower_lid = X[[40, 41], 1].mean() - (X[36, 1] + X[39, 1]) / 2 + X[[46, 47], 1].mean() - (X[42, 1] + X[45, 1]) / 2
    nose_wing = X[[31, 35], 1].mean() - ey
    mid_gap = (X[62, 1] + X[66, 1]) / 2
    lip_corner = mid_gap - X[[48, 54, 60, 64], 1].mean()
    mouth_width = X[54, 0] - X[48, 0]
    upper_lip = X[51, 1] - X[33, 1]
    return np.array([inner_brow, outer_brow, brow_gap, upper_lid, -lower_lid, -nose_wing, lip_corner,
                     mouth_width, -upper_lip], np.float32)


@functools.lru_cache(maxsize=1)
def population_neutral() -> np.ndarray:
    """A neutral face in canonical space ``[68, 2]`` (see ``sserd_core/data/neutral_68.json`` for provenance)."""
    data = json.loads((Path(__file__).parent / "data" / "neutral_68.json").read_text())
    return np.asarray(data["landmarks"], np.float32)


@functools.lru_cache(maxsize=1)
def feature_signatures() -> np.ndarray:
    """``[6, 9]``: how each non-neutral emotion at intensity 1 changes :func:`emotion_features`."""
    N = population_neutral()
    f0 = emotion_features(N)
    return np.stack([emotion_features(N + EMOTION_BASIS[i]) - f0 for i in range(1, len(EMOTIONS))])


def fit_emotion(feature_delta: np.ndarray, dead_zone: float = 0.0) -> np.ndarray:
    """Emotion vector ``[7]`` whose signature best explains a feature change (non-negative least squares).

    ``dead_zone`` is subtracted from every intensity (noise / personal idiosyncrasy floor).
    """
    S = feature_signatures() * _FEATURE_WEIGHT
    w, _ = nnls(S.T.astype(np.float64), (feature_delta * _FEATURE_WEIGHT).astype(np.float64))
    w = np.clip(w - dead_zone, 0.0, 1.0)
    if w.sum() > 1.0:
        w = w / w.sum()
    return normalise(np.concatenate([[0.0], w]).astype(np.float32))


def measure_landmarks(landmarks: np.ndarray, neutral_features: Optional[np.ndarray] = None,
                      dead_zone: float = 0.12) -> np.ndarray:
    """Emotion vector ``[7]`` shown by one face's 68 landmarks (frame pixels).

    Relative to ``neutral_features`` (the person's own neutral, when known) or else to
    the population neutral face.
    """
    f = emotion_features(to_canonical(landmarks))
    ref = emotion_features(population_neutral()) if neutral_features is None else neutral_features
    return fit_emotion(f - ref, dead_zone)


def measure_image(rgb: np.ndarray) -> list[np.ndarray]:
    """Emotion vectors of the faces in an image, largest face first (relative to the population neutral)."""
    from .face import detect_landmarks

    return [measure_landmarks(lm) for lm in detect_landmarks(rgb)]


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip opening of a face in IOD units (speech content)."""
    return float(content_features(to_canonical(landmarks))[0])


def measure_frame(rgb: np.ndarray, hint_landmarks: np.ndarray, content) -> tuple[np.ndarray, float]:
    """(emotion vector ``[7]``, mouth opening) of the face in ``rgb``, from landmarks fitted to these pixels.

    The fit starts from a box around ``hint_landmarks`` (no detection), so this is cheap;
    the emotion is relative to ``content``'s neutral estimate of the person.
    """
    from .face import fit_landmarks

    x0, y0 = hint_landmarks.min(0)
    x1, y1 = hint_landmarks.max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2 - 0.05 * (y1 - y0), 0.525 * max(x1 - x0, y1 - y0)
    lm = fit_landmarks(rgb, (cx - half, cy - half, cx + half, cy + half))
    X = to_canonical(lm)
    c = content_features(X)
    # the same speech-coupling correction the source estimate had, so speech does not read as emotion
    f = emotion_features(X) - (c - content.median_content()) @ content.coupling()
    return fit_emotion(f - content.neutral_features, dead_zone=0.0), float(c[0])


# ----------------------------------------------------------------------------- the content track

def _smooth(x: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Moving average over ``window`` frames of the valid rows of ``x`` ``[N, K]``."""
    out = x.copy()
    if window <= 1 or valid.sum() == 0:
        return out
    idx = np.where(valid)[0]
    xs = x[idx]
    k = np.ones(window) / window
    pad = window // 2
    padded = np.pad(xs, ((pad, pad), (0, 0)), mode="edge")
    sm = np.stack([np.convolve(padded[:, j], k, mode="valid")[: len(xs)] for j in range(xs.shape[1])], 1)
    out[idx] = sm
    return out


def build_content_track(video, times: np.ndarray, landmarks: np.ndarray, found: np.ndarray, face_index: int = 0,
                        neutral_dead_zone: float = 0.25):
    """Split a tracked face into speech content, the person's neutral face and per-frame source emotion.

    1. canonical landmarks per frame; content = (inner-lip opening, mouth width).
    2. emotion features per frame, with their linear dependence on the content removed
       (least squares over the clip) so speech does not read as emotion.
    3. the person's neutral = the clip's median face, minus any emotion it shows beyond
       ``neutral_dead_zone`` relative to the population neutral (so a clip that is
       happy throughout is recognised as happy and can be edited to neutral).
    4. per-frame source emotion relative to that neutral (intensities under 0.1 are taken
       as landmark noise), smoothed over ~1 s: emotions change slower than syllables.
    """
    from .content import ContentTrack

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
    # 2. remove speech-driven variation from the features
    c_med = np.median(content[idx], 0).astype(np.float32)
    C = content[idx] - c_med
    F = feats[idx]
    coupling = np.zeros((2, len(FEATURES)), np.float32)
    if len(idx) >= 12 and np.all(C.std(0) > 1e-3):
        A = np.hstack([C, np.ones((len(idx), 1), np.float32)])
        coef, *_ = np.linalg.lstsq(A.T @ A + 1e-3 * np.eye(3), A.T @ F, rcond=None)
        coupling = coef[:2].astype(np.float32)
        F = F - C @ coupling
        feats[idx] = F
    # 3. the person's neutral
    median_face = np.median(X[idx], 0)
    f_med = np.median(F, 0)
    f_pop = emotion_features(population_neutral())
    shown = fit_emotion(f_med - f_pop, dead_zone=neutral_dead_zone)
    neutral = (median_face - emotion_displacement(shown)).astype(np.float32)
    neutral_f = f_med - shown[1:] @ feature_signatures()
    # 4. per-frame source emotion
    src = np.zeros((n, len(EMOTIONS)), np.float32)
    src[:, 0] = 1.0
    for i in idx:
        src[i] = fit_emotion(feats[i] - neutral_f, dead_zone=0.1)
    window = max(1, int(round(1.0 * video.fps_float)) | 1)
    src = _smooth(src, found, window)
    src = np.stack([normalise(v) for v in src])
    return ContentTrack(video, times, landmarks.astype(np.float32), found.astype(bool), T, X, neutral, content,
                        src, neutral_f.astype(np.float32), face_index, coupling, c_med)

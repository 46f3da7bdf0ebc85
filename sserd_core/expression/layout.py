"""Where things are on the face: the 68-point index tables, the skin points between the landmarks and
the control points the warp moves (the landmarks, then the skin points)."""

from __future__ import annotations

import numpy as np

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

# ----------------------------------------------------------------------------- skin points
#: Skin points between the landmarks, where the 68-point layout has none but an expression
#: moves the skin (forehead, cheeks, the fold beside the mouth, chin). Each is an affine
#: combination of landmarks (weights sum to 1), so it follows the face under any
#: similarity transform; positions on the population-neutral face in the comments.
#: Names ending in ``_r`` are on the subject's right (image left) and mirror to ``_l``.
SKIN_POINTS = {
    "forehead_inner_r": {21: 1.8, 39: -0.8},                # (-0.15, -0.59) above the inner brow
    "forehead_mid_r": {19: 1.8, 37: -0.8},                  # (-0.63, -0.75) above the brow's peak
    "forehead_centre": {21: 0.75, 22: 0.75, 27: -0.5},      # (0, -0.46) above the glabella
    "lid_crease_r": {37: 0.35, 38: 0.35, 19: 0.15, 20: 0.15},  # (-0.51, -0.18) upper lid fold, lid to brow
    "glabella": {21: 0.25, 22: 0.25, 27: 0.5},              # (0, -0.19) between the brows
    "infraorbital_r": {40: 0.6, 31: 0.4},                   # (-0.37, 0.25) under the eye, beside the nose
    "malar_r": {41: 0.55, 2: 0.25, 31: 0.2},                # (-0.62, 0.28) the cheekbone
    "nasolabial_r": {31: 0.4, 48: 0.4, 3: 0.2},             # (-0.47, 0.76) cheek side of the nasolabial fold
    "modiolus_r": {48: 0.75, 4: 0.25},                      # (-0.54, 0.95) beside the mouth corner
    "lower_cheek_r": {48: 0.5, 5: 0.5},                     # (-0.56, 1.08) below and beside the corner
    "chin": {57: 0.5, 8: 0.5},                              # (0, 1.32) the chin boss
}


def _skin_layout():
    names, rows = [], []
    for name, w in SKIN_POINTS.items():
        variants = [(name, w)]
        if name.endswith("_r"):
            mirrored = {}
            for i, a in w.items():
                j = _MIRROR.get(i, {v: k for k, v in _MIRROR.items()}.get(i, 16 - i if i <= 16 else i))
                mirrored[j] = a
            variants.append((name[:-2] + "_l", mirrored))
        for n, ww in variants:
            row = np.zeros(68, np.float32)
            for i, a in ww.items():
                row[i] = a
            names.append(n)
            rows.append(row)
    return names, np.stack(rows)


SKIN_NAMES, _SKIN_MATRIX = _skin_layout()
#: total number of control points: the 68 landmarks, then the skin points
N_CONTROL = 68 + len(SKIN_NAMES)
_CONTROL_INDEX = {n: 68 + k for k, n in enumerate(SKIN_NAMES)}
#: pairs of control indices that mirror each other (landmarks and skin points)
_CONTROL_MIRROR = dict(_MIRROR)
_CONTROL_MIRROR.update({_CONTROL_INDEX[n]: _CONTROL_INDEX[n[:-2] + "_l"] for n in SKIN_NAMES if n.endswith("_r")})
_RIGHT_SIDE = set(_CONTROL_MIRROR)  # subject's right = image left = smaller x in canonical space


def control_points(landmarks: np.ndarray) -> np.ndarray:
    """The warp's control points ``[N_CONTROL, 2]``: the 68 landmarks, then the skin points (same units)."""
    lm = np.asarray(landmarks, np.float32)
    return np.concatenate([lm, _SKIN_MATRIX @ lm]).astype(np.float32)

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
  fields (:data:`EMOTION_AUS`); an emotion vector's intensities weight them. Intensity 1
  is a strong, posed expression. The fields also move *skin points* between the landmarks
  (:data:`SKIN_POINTS`: forehead, lid fold, cheeks, the fold beside the mouth, chin), so
  the warp has handles where an expression moves skin the 68 points do not cover; the
  lateral extent and the corners of the mouth are emotion, its centre gap is speech.

Measuring an emotion (of a reference face, or of the source to be able to remove it)
uses content-insensitive geometric features (brow heights, lid openings, nose-wing and
lip-corner heights...) and a non-negative least-squares fit of the emotions' feature
signatures. The signatures come from the very displacement fields the renderer applies,
so measuring what was rendered gives back what was asked for. Against the population
neutral (a reference face, a clip's resting face) each feature's person-to-person spread
is taken off first (:data:`IDENTITY_SPREAD`), so a person's build does not read as emotion.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Optional

import numpy as np

from .. import geometry
from ..emotion import EMOTIONS, normalise

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


def _au(spec: dict) -> np.ndarray:
    """Displacement field ``[N_CONTROL, 2]`` from ``{point: (outward, down)}`` on the subject's right side
    (mirrored to the left). A point is a landmark index or a skin point's name (without ``_r``)."""
    d = np.zeros((N_CONTROL, 2), np.float32)
    for key, (out, down) in spec.items():
        i = key if isinstance(key, int) else _CONTROL_INDEX.get(key + "_r", _CONTROL_INDEX.get(key))
        if i in _RIGHT_SIDE:
            d[i] = (-out, down)
            d[_CONTROL_MIRROR[i]] = (out, down)
        else:  # centre points: no outward component
            d[i] = (0.0, down)
    return d


#: FACS action units as displacement fields in canonical units (inter-ocular distance = 1)
#: at intensity 1 = a strong, posed expression (about the apex of a posed expression in
#: the CK+ and MEAD recordings at level 3; a spontaneous everyday expression is 0.3-0.6).
#: Upper and lower inner-lip points always move together vertically, so no action unit
#: changes the lip gap (speech); the jaw and the inner-lip centres never move.
ACTION_UNITS = {
    "AU1": _au({21: (0, -.19), 20: (0, -.131), 19: (0, -.071), 18: (0, -.036), 38: (0, -.012),     # inner brow raiser
                "forehead_inner": (0, -.119), "forehead_centre": (0, -.107), "forehead_mid": (0, -.054),
                "lid_crease": (0, -.025)}),
    "AU2": _au({17: (0, -.167), 18: (0, -.178), 19: (0, -.143), 20: (0, -.071), 21: (0, -.018),    # outer brow raiser
                "forehead_mid": (0, -.107), "forehead_inner": (0, -.03),
                "lid_crease": (0, -.025)}),
    "AU4": _au({21: (-.095, .162), 20: (-.068, .149), 19: (-.034, .108), 18: (-.014, .068), 17: (0, .027),  # brow lowerer
                37: (0, .024), 38: (0, .03), "forehead_inner": (-.054, .081), "forehead_centre": (0, .047),
                "glabella": (0, .034), "forehead_mid": (-.014, .041)}),
    "AU5": _au({37: (0, -.038), 38: (0, -.038), 36: (0, -.004), 39: (0, -.004),               # upper lid raiser
                "lid_crease": (0, -.035)}),
    "AU6": _au({40: (0, -.046), 41: (0, -.052), 36: (0, -.013), 17: (0, .026), 18: (0, .013),      # cheek raiser
                "malar": (.013, -.091), "infraorbital": (0, -.065), "nasolabial": (.013, -.052)}),
    "AU7": _au({40: (0, -.044), 41: (0, -.044), 37: (0, .019), 38: (0, .019)}),                # lid tightener
    "AU9": _au({31: (-.015, -.09), 32: (0, -.075), 33: (0, -.06), 21: (-.03, .075), 20: (0, .038),  # nose wrinkler
                50: (0, -.06), 51: (0, -.053), 49: (0, -.038), 61: (0, -.03), 67: (0, -.03),
                40: (0, -.03), 41: (0, -.03), "infraorbital": (0, -.068), "glabella": (0, .068),
                "nasolabial": (0, -.053)}),
    "AU10": _au({49: (0, -.077), 50: (0, -.091), 51: (0, -.077), 61: (0, -.056), 67: (0, -.056),  # upper lip raiser
                 48: (0, -.021), 60: (0, -.021), "nasolabial": (0, -.056)}),
    "AU12": _au({48: (.182, -.182), 60: (.168, -.182), 49: (.098, -.119), 59: (.098, -.077),         # lip corner puller
                 61: (.063, -.063), 67: (.063, -.063), 50: (.035, -.063), 51: (0, -.042), 58: (.035, -.028),
                 "modiolus": (.14, -.14), "nasolabial": (.07, -.084), "lower_cheek": (.07, -.07),
                 "malar": (.021, -.035)}),
    "AU15": _au({48: (-.022, .18), 60: (-.022, .165), 49: (0, .075), 59: (0, .075), 61: (0, .045),  # corner depressor
                 67: (0, .045), 50: (0, .018), 58: (0, .018), "modiolus": (0, .12), "lower_cheek": (0, .06)}),
    "AU16": _au({58: (0, .039), 57: (0, .046), 59: (0, .019)}),                                  # lower lip depressor
    "AU17": _au({57: (0, -.033), 58: (0, -.026), "chin": (0, -.039)}),                           # chin raiser
    "AU20": _au({48: (.154, .049), 60: (.154, .049), 49: (.077, .017), 59: (.077, .025),          # lip stretcher
                 61: (.042, 0), 67: (.042, 0), 50: (.025, 0), 58: (.025, 0),
                 "modiolus": (.119, .035), "lower_cheek": (.049, .017)}),
    "AU23": _au({48: (-.1, 0), 60: (-.1, 0), 49: (-.05, .019), 59: (-.05, -.019),             # lip tightener
                 61: (-.031, 0), 67: (-.031, 0), 50: (-.015, .025), 51: (0, .025), 58: (-.015, -.025), 57: (0, -.025),
                 "modiolus": (-.062, 0)}),
    "AU18": _au({48: (-.08, .01), 60: (-.08, .01), 49: (-.04, 0), 59: (-.04, 0), 61: (-.02, 0),  # lip pucker
                 67: (-.02, 0), "modiolus": (-.05, 0)}),
    # The edit's own lip corner puller and depressor (:data:`EDIT_AUS`). With the lip centres pinned
    # (speech), AU12 and AU15 as measured bent a closed mouth into a V or a frown-shaped arch: the
    # corners travelled 0.18 IOD while the centre stayed. Here the corners travel as far as they do
    # relative to the mouth's centre in a real broad smile (real_speaker's grin: 0.14 out, 0.12 up
    # against the centre of the lip gap, happy measured 0.4; the vertical part is held lower, as on a
    # closed mouth), and the lips between follow smoothly (corner 1, beside it 0.7, mid-lip 0.4).
    "AU12e": _au({48: (.13, -.085), 60: (.13, -.085), 49: (.09, -.065), 59: (.09, -.065),
                  61: (.07, -.055), 67: (.07, -.055), 50: (.045, -.04), 58: (.045, -.04), 51: (0, -.015), 57: (0, -.015),
                  "modiolus": (.10, -.07), "nasolabial": (.05, -.06), "lower_cheek": (.05, -.045),
                  "malar": (.02, -.03)}),
    "AU15e": _au({48: (-.01, .09), 60: (-.01, .085), 49: (0, .055), 59: (0, .055), 61: (0, .04), 67: (0, .04),
                  50: (0, .018), 58: (0, .018), "modiolus": (0, .07), "lower_cheek": (0, .035)}),
}
#: The paper's emotions as AU combinations (after Ekman & Friesen's EMFACS). AU26 (jaw drop,
#: part of surprise) is left out on purpose: the jaw is speech content and is never edited.
EMOTION_AUS = {
    "angry": {"AU4": 1.3, "AU5": 0.4, "AU7": 1.3, "AU23": 1.2},
    "disgusted": {"AU9": 1.0, "AU10": 1.0, "AU15": 0.5, "AU16": 0.5, "AU4": 0.4},
    "fear": {"AU1": 1.0, "AU2": 0.8, "AU4": 0.6, "AU5": 1.0, "AU20": 1.0},
    "happy": {"AU6": 1.0, "AU12": 1.0},
    "sad": {"AU1": 1.0, "AU4": 0.6, "AU15": 1.0, "AU17": 0.6},
    "surprised": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU18": 0.3},
}


#: How strongly an edit *adds* an emotion (AU weights, as :data:`EMOTION_AUS`). The measurement
#: (:func:`feature_signatures`, :func:`fit_emotion`) and the removal of an expression the source
#: shows use :data:`EMOTION_AUS`, so a measured expression is taken off exactly, and changing these
#: weights changes no measurement. Calibrated on the shapes real faces make, not on a classifier's
#: reading (a classifier rewarded caricatures: a smile as a V-shaped band of stretched lips, a frown
#: as an arch, a swollen lower lip): the mouth uses the edit's own corner puller and depressor
#: (``AU12e``, ``AU15e``: the corners' travel of a real broad smile, measured against the mouth's
#: centre), the lower-lip depressor (AU16, which can only swell a lip whose inner edge is pinned) is
#: left out of disgust, the lip stretcher of fear and the tightener of anger are held to what keeps
#: the lips' shape, and the lips' height is kept within 85-115 % of the source's by the renderer
#: (:func:`sserd_core.landmark.render.keep_lip_thickness`).
EDIT_AUS = {
    "angry": {"AU4": 0.9, "AU5": 0.4, "AU7": 1.0, "AU23": 0.7, "AU10": 0.2},
    "disgusted": {"AU9": 0.8, "AU10": 0.7, "AU15e": 0.6, "AU4": 0.2},
    "fear": {"AU1": 1.0, "AU2": 0.8, "AU4": 0.6, "AU5": 1.0, "AU20": 0.5},
    "happy": {"AU6": 1.0, "AU12e": 1.0},
    "sad": {"AU1": 1.0, "AU4": 0.6, "AU15e": 1.0, "AU17": 0.3},
    "surprised": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU18": 0.3},
}


def emotion_field(name: str, table: Optional[dict] = None) -> np.ndarray:
    """Canonical displacement field ``[N_CONTROL, 2]`` of one emotion at intensity 1
    (``table``: :data:`EMOTION_AUS`, the measured face, by default; :data:`EDIT_AUS` for an edit)."""
    table = EMOTION_AUS if table is None else table
    return sum(w * ACTION_UNITS[au] for au, w in table[name].items()).astype(np.float32)


#: ``[7, N_CONTROL, 2]`` displacement basis in EMOTIONS order (neutral = zeros)
CONTROL_BASIS = np.stack([np.zeros((N_CONTROL, 2), np.float32)] + [emotion_field(e) for e in EMOTIONS[1:]])
#: ``[7, 68, 2]`` the same for the 68 landmarks alone
EMOTION_BASIS = np.ascontiguousarray(CONTROL_BASIS[:, :68])


def emotion_displacement(vector: np.ndarray) -> np.ndarray:
    """Canonical displacement ``[68, 2]`` of the landmarks for an emotion vector (intensities × basis)."""
    v = np.asarray(vector, np.float32)
    return np.tensordot(v[1:], EMOTION_BASIS[1:], axes=1)


def control_displacement(vector: np.ndarray) -> np.ndarray:
    """Canonical displacement ``[N_CONTROL, 2]`` of all control points (landmarks + skin points)."""
    v = np.asarray(vector, np.float32)
    return np.tensordot(v[1:], CONTROL_BASIS[1:], axes=1)


#: ``[7, N_CONTROL, 2]`` the edit's basis (:data:`EDIT_AUS`)
EDIT_CONTROL_BASIS = np.stack([np.zeros((N_CONTROL, 2), np.float32)]
                              + [emotion_field(e, EDIT_AUS) for e in EMOTIONS[1:]])


#: How an edit *takes off* an emotion the source shows (AU weights per unit of measured intensity,
#: as :data:`EMOTION_AUS`). A smile's cheek raise (AU6) comes off twice as strongly as measured: the
#: fit reads a smile mostly from the lip corners (AU12's 0.18 IOD against AU6's 0.05 at the lower
#: lid), so on a laugh whose cheeks push the lower lids up (measured happy 0.55-0.85) "neutral"
#: left the lower lids and cheeks up while the open lips (which keep 0.3 of the edit,
#: :data:`~sserd_core.landmark.render.OPEN_LIPS`) could not carry the change. With AU6 ×2 the
#: lower lids come down and the eyes open back up (classifier on the first 48 frames: neutral on
#: the laugh +0.07 → +0.10, on the speaker's grin +0.02 → +0.04; docs/EDIT_STRENGTH.md).
REMOVE_AUS = {
    **EMOTION_AUS,
    "happy": {"AU6": 2.0, "AU12": 1.0},
}
#: ``[7, N_CONTROL, 2]`` the removal's basis (:data:`REMOVE_AUS`)
REMOVE_CONTROL_BASIS = np.stack([np.zeros((N_CONTROL, 2), np.float32)]
                                + [emotion_field(e, REMOVE_AUS) for e in EMOTIONS[1:]])


def edit_split(target: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(added, removed)`` ``[7]`` (both ≥ 0): how much of each emotion an edit from ``source`` to
    ``target`` adds and takes off (the neutral entry is 0)."""
    d = np.asarray(target, np.float32) - np.asarray(source, np.float32)
    d[0] = 0.0
    return np.maximum(d, 0.0), np.maximum(-d, 0.0)


def keep_lid_crease_between(src: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``delta`` ``[N_CONTROL, 2]`` with each upper-lid crease kept between its brow and its upper lid.

    ``src``: the source's control points in canonical space. The crease is skin between the brow and
    the lid: where an edit brings the two closer (a lowered brow, angry or disgusted, over an eye that
    opens as a smile comes off), the crease keeps its relative place in that column, so the column is
    compressed evenly. The AU tables move it on its own, and a brow lowered past it folded the warp:
    the brow was drawn as a thin, bent line (seen on a laughing face edited to angry). Where the brow
    and the lid move apart (surprise) the tables' crease motion is kept. Modifies and returns ``delta``.
    """
    for brow, lid, crease in ((BROW_R, [37, 38], _CONTROL_INDEX["lid_crease_r"]),
                              (BROW_L, [43, 44], _CONTROL_INDEX["lid_crease_l"])):
        b0, l0, c0 = float(src[brow, 1].mean()), float(src[lid, 1].mean()), float(src[crease, 1])
        b1, l1 = b0 + float(delta[brow, 1].mean()), l0 + float(delta[lid, 1].mean())
        if l0 - b0 > 1e-6 and l1 - b1 < l0 - b0:
            t = (c0 - b0) / (l0 - b0)
            delta[crease, 1] = b1 + t * (l1 - b1) - c0
    return delta


def edit_displacement(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Canonical displacement ``[N_CONTROL, 2]`` that takes a face showing ``source`` to ``target``.

    What the source shows and the target does not is removed as it was measured
    (:data:`REMOVE_AUS`: :data:`EMOTION_AUS` with a smile's cheek raise doubled); what the target adds is added at the edit's strength (:data:`EDIT_AUS`).
    Zero when ``target == source``; linear (so monotonic) in a label's intensity on either side of
    the source's own amount.
    """
    added, removed = edit_split(target, source)
    return (np.tensordot(added[1:], EDIT_CONTROL_BASIS[1:], axes=1)
            - np.tensordot(removed[1:], REMOVE_CONTROL_BASIS[1:], axes=1)).astype(np.float32)


# ----------------------------------------------------------------------------- alignment

# the canonical face space is defined once, in sserd_core.geometry (shared with the metrics)
canonical_transform = geometry.canonical_transform
apply = geometry.apply


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
    opening = geometry.opening_of_canonical(X)
    width = X[64, 0] - X[60, 0]
    return np.array([opening, width], np.float32)


FEATURES = ("inner_brow", "outer_brow", "brow_gap", "upper_lid", "lower_lid", "nose_wing", "lip_corner",
            "mouth_width", "upper_lip")
#: per-feature weight in the emotion fit (≈ 1 / typical landmark noise of that feature)
_FEATURE_WEIGHT = np.array([1.0, 1.0, 0.7, 1.3, 1.3, 1.0, 1.2, 0.5, 0.6], np.float32)
#: how much each feature of a *neutral* face varies from person to person (IOD units, about
#: 1.5 standard deviations of adult faces): a difference from the population neutral smaller
#: than this is taken as the person's build, not as an expression
IDENTITY_SPREAD = np.array([0.07, 0.07, 0.07, 0.045, 0.02, 0.09, 0.02, 0.035, 0.05], np.float32)


def identity_tolerant(feature_delta: np.ndarray) -> np.ndarray:
    """A feature change relative to the *population* neutral with each feature's person-to-person
    spread (:data:`IDENTITY_SPREAD`) taken off its magnitude (soft threshold)."""
    d = np.asarray(feature_delta, np.float32)
    return np.sign(d) * np.maximum(np.abs(d) - IDENTITY_SPREAD, 0.0)


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
    data = json.loads((Path(__file__).parent.parent / "data" / "neutral_68.json").read_text())
    return np.asarray(data["landmarks"], np.float32)


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
#: On the real clips (bench/reference_strength.py, docs/EDIT_STRENGTH.md) the laugh as a reference went
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


def measure_image(rgb: np.ndarray) -> list[np.ndarray]:
    """Target emotion vectors of the faces in an image, largest face first.

    Each face is measured against the population neutral with the person-to-person spread
    of neutral faces taken off (:func:`identity_tolerant`), then brought to full strength by
    :func:`reference_target`, so a reference face's emotion lands as strongly as a label's.
    """
    from ..face import detect_landmarks

    f_pop = emotion_features(population_neutral())
    out = []
    for lm in detect_landmarks(rgb):
        X = to_canonical(lm)
        d = identity_tolerant(emotion_features(X) - f_pop)
        out.append(reference_target(fit_emotion(d, dead_zone=0.03, weights=reference_weights(X))))
    return out


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip opening of a face in IOD units (speech content; :func:`sserd_core.geometry.mouth_opening`)."""
    return float(geometry.mouth_opening(landmarks))


def measure_frame(rgb: np.ndarray, hint_landmarks: np.ndarray, content) -> tuple[np.ndarray, float]:
    """(emotion vector ``[7]``, mouth opening) of the face in ``rgb``, from landmarks fitted to these pixels.

    The fit starts from a box around ``hint_landmarks`` (no detection), so this is cheap;
    the emotion is relative to ``content``'s neutral estimate of the person.
    """
    from ..face import fit_landmarks

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


#: a lip gap that never closes: (opening of the 10 % most closed frames where it starts to count,
#: the span over which it reaches full weight, both IOD units; the happy intensity it adds at full weight)
_HELD_OPEN = (0.05, 0.15, 0.6)
#: largest plausible change of an emotion feature per unit of lip opening (both in IOD units)
_MAX_COUPLING = 0.3


def _high_pass(x: np.ndarray, window: int) -> np.ndarray:
    """``x`` ``[N, K]`` minus its moving average over ``window`` frames: the syllable-rate part."""
    k = np.ones(window) / window
    pad = window // 2
    padded = np.pad(x, ((pad, pad), (0, 0)), mode="edge")
    low = np.stack([np.convolve(padded[:, j], k, mode="valid")[: len(x)] for j in range(x.shape[1])], 1)
    return x - low


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

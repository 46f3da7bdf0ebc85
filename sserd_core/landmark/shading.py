"""Expression shading for the landmark backend: the folds and wrinkles a warp cannot make.

A warp only moves the source's pixels; a smile also *creates* the nasolabial fold, a frown
the vertical furrows between the brows, raised brows the horizontal forehead lines, a
nose wrinkle the creases over the nose. This module draws those as a smooth luminance
gain (a narrow shadow along the crease, a faint highlight on the bulging side), placed on
the edited face's own landmarks and multiplied into the warped pixels, so each fold
takes the face's own skin tone and lighting. Folds the source already shows and the
target does not want are softened instead: the crease's shadow is filled from its
surroundings (the low-frequency part of the skin is kept, the fold's dip removed).

Amounts are in action-unit terms (see :data:`sserd_core.expression.EMOTION_AUS`): a fold
is drawn as deep as the target's activation of its action units exceeds the source's.
"""

from __future__ import annotations

import functools
from typing import Optional

import cv2
import numpy as np

from ..emotion import EMOTIONS

#: which action units deepen each fold (weights add up over the AUs; ``AU12e``/``AU15e`` are the
#: edit's own corner puller and depressor, :data:`~sserd_core.expression.ACTION_UNITS`)
FOLD_AUS = {
    "nasolabial": {"AU12": 0.8, "AU12e": 0.8, "AU6": 0.3, "AU10": 0.6, "AU9": 0.4},
    "glabellar": {"AU4": 1.0, "AU9": 0.4},
    "forehead": {"AU1": 0.6, "AU2": 0.6},
    "nose": {"AU9": 1.0},
    "lower_lid": {"AU6": 0.7, "AU7": 0.5},
    "marionette": {"AU15": 1.0, "AU15e": 1.0},
}
#: shadow depth of each fold at activation 1 (fraction of the luminance taken at the crease). Drawn
#: forehead lines are left out (0): at 1:1 they read as regular light and dark stripes painted on the
#: skin, not as the person's own folds; the frown lines and the nose creases are drawn shallower
#: than a posed expression's, where a deeper shadow read as a dark blotch between the brows or a
#: smear down the nose. Softening a fold the source shows (a negative amount) is not affected.
FOLD_DEPTH = {"nasolabial": 0.24, "glabellar": 0.13, "forehead": 0.0, "nose": 0.11, "lower_lid": 0.12,
              "marionette": 0.14}


def au_activations(vector: np.ndarray, table: Optional[dict] = None) -> dict:
    """Action-unit activations ``{AU: amount}`` of an emotion vector ``[7]`` (``table``: the AU
    weights of each emotion, :data:`~sserd_core.expression.EMOTION_AUS` by default)."""
    from ..expression import EMOTION_AUS

    table = EMOTION_AUS if table is None else table
    acts: dict = {}
    for i, name in enumerate(EMOTIONS[1:], start=1):
        w = float(vector[i])
        if w <= 0:
            continue
        for au, a in table[name].items():
            acts[au] = acts.get(au, 0.0) + w * a
    return acts


def fold_amounts(target: np.ndarray, source: np.ndarray, controls: Optional[np.ndarray] = None) -> dict:
    """``{fold: amount}`` in −1..1: positive = draw the fold, negative = soften the source's fold.

    As the warp does (:func:`sserd_core.expression.edit_displacement`): what the edit adds counts
    at the edit's strength, what it removes as it was measured (:data:`~sserd_core.expression.REMOVE_AUS`);
    expression ``controls`` ``[N_CONTROLS]`` add their action units (:data:`~sserd_core.expression.CONTROL_AUS`;
    a control below 0 softens its folds).
    """
    from ..controls import CONTROL_NAMES
    from ..expression import CONTROL_AUS, EDIT_AUS, REMOVE_AUS, edit_split

    added, removed = edit_split(target, source)
    at, as_ = au_activations(added, EDIT_AUS), au_activations(removed, REMOVE_AUS)
    if controls is not None:
        for name, v in zip(CONTROL_NAMES, np.asarray(controls, np.float32)):
            for au, w in CONTROL_AUS[name].items() if v else ():
                at[au] = at.get(au, 0.0) + float(v) * w
    out = {}
    for fold, aus in FOLD_AUS.items():
        t = sum(w * at.get(au, 0.0) for au, w in aus.items())
        s = sum(w * as_.get(au, 0.0) for au, w in aus.items())
        out[fold] = float(np.clip(t - s, -1.0, 1.0))
    return out


@functools.lru_cache(maxsize=None)
def _bezier_basis(n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return np.hstack([(1 - t) ** 2, 2 * (1 - t) * t, t ** 2])


def _bezier(p0, p1, p2, n: int = 12) -> np.ndarray:
    """``n`` points of the quadratic Bézier curve through ``p0``, (control ``p1``), ``p2``."""
    return _bezier_basis(n) @ np.array([p0, p1, p2], np.float64)


def fold_curves(pts: np.ndarray, iod: float) -> dict:
    """Polylines ``{fold: [(curve [n, 2], bulge_side [2]), ...]}`` (pixels) on control points ``pts``.

    ``pts`` are :func:`sserd_core.expression.control_points` of the *edited* face in the
    same pixel frame; ``bulge_side`` is a unit vector pointing to the side the skin bulges
    over the crease (where a faint highlight goes).
    """
    from ..expression.layout import _CONTROL_INDEX as CI

    P = np.asarray(pts, np.float64)
    down = P[8] - P[27]
    down /= max(np.linalg.norm(down), 1e-6)
    right = np.array([down[1], -down[0]])  # subject's right → image left is -right
    if np.dot(P[16] - P[0], right) < 0:
        right = -right
    curves: dict = {k: [] for k in FOLD_AUS}
    for side, (ala, corner, modiolus, eye_lo1, eye_lo2) in {
        -1: (31, 48, CI["modiolus_r"], 41, 40), 1: (35, 54, CI["modiolus_l"], 46, 47),
    }.items():
        out = side * right
        # nasolabial: from beside the nose wing, bowing outwards, to beside and below the mouth corner
        a = P[ala] + out * 0.10 * iod - down * 0.02 * iod
        c = P[modiolus] + down * 0.10 * iod + out * 0.02 * iod
        b = 0.5 * (a + c) + out * 0.10 * iod
        curves["nasolabial"].append((_bezier(a, b, c), out))
        # lower lid: the bulge under the eye
        lo = 0.5 * (P[eye_lo1] + P[eye_lo2])
        curves["lower_lid"].append((_bezier(P[eye_lo1] + down * .11 * iod + out * .05 * iod, lo + down * .14 * iod,
                                            P[eye_lo2] + down * .11 * iod - out * .05 * iod, 8), -down))
        # marionette: from the mouth corner down and out
        m0 = P[corner] + out * 0.03 * iod + down * 0.02 * iod
        curves["marionette"].append((_bezier(m0, m0 + down * .10 * iod + out * .03 * iod,
                                             m0 + down * .2 * iod + out * .02 * iod, 8), out))
        # glabellar furrow: a short vertical crease beside the midline, between the brow heads
        g0 = 0.5 * (P[21] + P[22]) + out * 0.075 * iod - down * 0.08 * iod
        curves["glabellar"].append((_bezier(g0, g0 + down * 0.11 * iod - out * 0.012 * iod,
                                            g0 + down * 0.24 * iod - out * 0.01 * iod, 8), out))
        # nose: oblique creases on the side of the nose bridge
        n0 = P[28] + out * 0.05 * iod
        curves["nose"].append((_bezier(n0, n0 + out * 0.06 * iod + down * 0.02 * iod,
                                       n0 + out * 0.13 * iod + down * 0.07 * iod, 8), -down))
        n1 = P[29] + out * 0.07 * iod
        curves["nose"].append((_bezier(n1, n1 + out * 0.05 * iod + down * 0.015 * iod,
                                       n1 + out * 0.11 * iod + down * 0.05 * iod, 8), -down))
    # forehead: horizontal lines above the brows, following their arch
    centre = P[CI["forehead_centre"]]
    for k, lift in enumerate((0.16, 0.30, 0.44)):
        mid = centre - down * (lift - 0.02) * iod
        half = (0.42 - 0.05 * k) * iod
        arch = (0.05 + 0.02 * k) * iod
        l, r = mid - right * half + down * arch, mid + right * half + down * arch
        curves["forehead"].append((_bezier(l, mid - down * 0.015 * iod, r, 14), -down))
    return curves


def shading_gain(shape: tuple[int, int], pts: np.ndarray, iod: float, amounts: dict,
                 image: Optional[np.ndarray] = None) -> Optional[tuple[np.ndarray, tuple[int, int]]]:
    """Luminance gain drawing/softening the folds: ``(gain, (x0, y0))`` or None when there is none.

    ``gain`` is ``float32 [gh, gw]`` (1 = unchanged) for the crop region whose top-left corner
    is ``(x0, y0)``: only the part of the crop where folds lie is computed. ``shape``: the
    crop's ``(h, w)``; ``pts``: edited control points in crop pixels; ``iod``: the
    inter-ocular distance in pixels; ``amounts``: :func:`fold_amounts`. ``image``
    (``uint8 [h, w, 3]``, the warped crop) is needed to soften folds (negative amounts).
    """
    active = {f: a for f, a in amounts.items() if abs(a) > 0.02 and (a < 0 or FOLD_DEPTH[f] > 0)}
    if not active:
        return None
    h, w = shape
    curves = fold_curves(np.asarray(pts, np.float64), iod)
    drawn = [(fold, c, b) for fold in active for c, b in curves[fold]]
    allpts = np.concatenate([c for _, c, _ in drawn])
    margin = 0.2 * iod
    x0, y0 = np.floor(np.maximum(allpts.min(0) - margin, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(allpts.max(0) + margin, [w, h])).astype(int)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    # draw at a reduced scale where the face is large: folds are smooth at that size anyway
    scale = min(1.0, 64.0 / max(iod, 1.0))
    sh, sw = max(2, int(round((y1 - y0) * scale))), max(2, int(round((x1 - x0) * scale)))
    dark = np.zeros((sh, sw), np.float32)
    light = np.zeros((sh, sw), np.float32)
    soften = np.zeros((sh, sw), np.float32)
    width = max(1, int(round(0.028 * iod * scale)))
    for fold, curve, bulge in drawn:
        amount = active[fold]
        c = (curve - [x0, y0]) * scale
        if amount > 0:
            depth = FOLD_DEPTH[fold] * amount
            cv2.polylines(dark, [np.round(c * 16).astype(np.int32)], False, depth, width, lineType=cv2.LINE_AA, shift=4)
            hi = c + bulge * 2.2 * width
            cv2.polylines(light, [np.round(hi * 16).astype(np.int32)], False, 0.35 * depth, width * 2,
                          lineType=cv2.LINE_AA, shift=4)
        else:
            cv2.polylines(soften, [np.round(c * 16).astype(np.int32)], False, -amount, width * 4,
                          lineType=cv2.LINE_AA, shift=4)
    sigma = max(0.8, 1.1 * width)
    gain = 1.0 - cv2.GaussianBlur(dark, (0, 0), sigma) + cv2.GaussianBlur(light, (0, 0), 2 * sigma)
    if soften.any() and image is not None:
        # the fold's dip relative to its surroundings, taken out where the target has no fold
        small = cv2.resize(image[y0:y1, x0:x1], (sw, sh), interpolation=cv2.INTER_AREA)
        lum = small.sum(2, dtype=np.float32) / np.float32(3.0) + np.float32(1.0)  # the channels' mean, + 1
        local = cv2.GaussianBlur(lum, (0, 0), 4 * width)
        fill = np.clip(local / lum, 1.0, 1.35)  # brighten only: creases are darker than their surroundings
        s_ = np.clip(cv2.GaussianBlur(soften, (0, 0), 2 * sigma), 0.0, 1.0)
        gain *= 1.0 + s_ * (fill - 1.0)
    if scale < 1.0:
        gain = cv2.resize(gain, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return gain.astype(np.float32, copy=False), (int(x0), int(y0))

"""Expressions as displacements in the canonical face space: FACS action units, the emotions'
AU recipes (to measure, to edit and to remove an expression) and the displacement bases built from them."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..controls import CONTROL_NAMES
from ..emotion import EMOTIONS
from .layout import (BROW_L, BROW_R, N_CONTROL, _CONTROL_INDEX, _CONTROL_MIRROR, _RIGHT_SIDE)


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
    # The squint (FACS AU44): the eyes narrowed from both lids, the upper lid lowered a little more than
    # the lower lid rises (an eye about half closed at 1), the lid fold following the upper lid.
    "AU44": _au({37: (0, .03), 38: (0, .03), 40: (0, -.022), 41: (0, -.022), 36: (0, .004), 39: (0, .002),
                 "lid_crease": (0, .015)}),
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


#: What each expression control (:data:`sserd_core.controls.CONTROLS`) does at +1, as AU weights (as
#: :data:`EDIT_AUS`): the action unit at the strength the labels' edit gives it, so a control and a label
#: that share an action unit move the face alike (the lip stretcher, tightener and chin raiser as held
#: in :data:`EDIT_AUS`, which keeps the lips' shape). −1 is the opposite displacement.
CONTROL_AUS = {
    "brow_inner": {"AU1": 1.0},
    "brow_outer": {"AU2": 1.0},
    "brow_lower": {"AU4": 0.9},
    "lid_raise": {"AU5": 1.0},
    "lid_tighten": {"AU7": 1.0},
    "squint": {"AU44": 1.0},
    "cheek_raise": {"AU6": 1.0},
    "nose_wrinkle": {"AU9": 0.8},
    "smile": {"AU12e": 1.0},
    "corners_down": {"AU15e": 1.0},
    "lip_stretch": {"AU20": 0.5},
    "lip_press": {"AU23": 0.7},
    "chin_raise": {"AU17": 0.4},
}
#: ``[N_CONTROLS, N_CONTROL, 2]`` each control's displacement at +1, in :data:`~sserd_core.controls.CONTROL_NAMES` order
CONTROLS_BASIS = np.stack([sum(w * ACTION_UNITS[au] for au, w in CONTROL_AUS[name].items())
                           for name in CONTROL_NAMES]).astype(np.float32)
#: ``[N_CONTROL]`` how far (IOD) from the person's neutral face an edit with controls may take each control point:
#: the farthest any label's edit (at intensity 1) or any control (at ±1) moves it alone. A label and controls
#: that add up past it are held to it (they saturate; the landmark editor's ``control_saturation`` says by how
#: much): a smile control on top of "happy" does not pull the lip corners twice as far as the strongest smile
#: the edit makes.
EDIT_REACH = np.maximum(np.linalg.norm(np.stack([emotion_field(e, EDIT_AUS) for e in EMOTIONS[1:]]), axis=-1).max(0),
                        np.linalg.norm(CONTROLS_BASIS, axis=-1).max(0)).astype(np.float32)


def controls_displacement(values: np.ndarray) -> np.ndarray:
    """Canonical displacement ``[N_CONTROL, 2]`` of control values ``[N_CONTROLS]`` (−1…+1 each)."""
    return np.tensordot(np.asarray(values, np.float32), CONTROLS_BASIS, axes=1).astype(np.float32)


def hold_to_reach(delta: np.ndarray, reach: np.ndarray = EDIT_REACH) -> np.ndarray:
    """``delta`` ``[N_CONTROL, 2]`` with each point's displacement no longer than ``reach`` (direction kept)."""
    norm = np.linalg.norm(delta, axis=-1)
    scale = np.minimum(1.0, reach / np.maximum(norm, 1e-9))
    return (delta * scale[:, None]).astype(np.float32)


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


def edit_displacement(target: np.ndarray, source: np.ndarray, controls: Optional[np.ndarray] = None) -> np.ndarray:
    """Canonical displacement ``[N_CONTROL, 2]`` that takes a face showing ``source`` to ``target``, with
    the expression ``controls`` ``[N_CONTROLS]`` (−1…+1; None: none) on top.

    What the source shows and the target does not is removed as it was measured
    (:data:`REMOVE_AUS`: :data:`EMOTION_AUS` with a smile's cheek raise doubled); what the target adds is added at the edit's strength (:data:`EDIT_AUS`).
    Zero when ``target == source``; linear (so monotonic) in a label's intensity on either side of
    the source's own amount. With controls, the face the edit makes (what the source shows, the label's
    change and the controls' displacement, from the person's neutral face) is held, point by point, to
    :data:`EDIT_REACH` or to what the source shows where that is more (:func:`hold_to_reach`): a control on top
    of a label that already moves a part as far as the edit moves it, or against a label that already took an
    expression off, saturates instead of making a caricature. Without controls nothing is held (no label
    reaches it alone).
    """
    added, removed = edit_split(target, source)
    delta = (np.tensordot(added[1:], EDIT_CONTROL_BASIS[1:], axes=1)
             - np.tensordot(removed[1:], REMOVE_CONTROL_BASIS[1:], axes=1))
    if controls is not None and np.any(controls):
        # the face the edit makes, as a displacement from the person's neutral face, held to the reach (or to
        # what the source itself shows, where that is more: the source's own expression is never pulled in)
        shown = control_displacement(source)
        made = shown + delta + controls_displacement(controls)
        reach = np.maximum(EDIT_REACH, np.linalg.norm(shown, axis=-1))
        delta = hold_to_reach(made, reach) - shown
    return delta.astype(np.float32)

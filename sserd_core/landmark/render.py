"""The landmark backend: dense warp of the face region from source to edited landmarks.

For each frame: target landmarks = source landmarks + the emotion displacement
(target emotion − the emotion the source shows), mapped from canonical space to the
frame. A thin-plate spline through the moved emotion points, the pinned content points
(jaw, inner-lip centres, nose bridge) and a fixed ring around the face gives a smooth
backward flow; ``torch.nn.functional.grid_sample`` (on the CPU: the equivalent, faster ``cv2.remap``)
resamples the face region with it, and
:func:`sserd_core.blend.paste_back` blends the result into the frame. The flow is zero on
the ring, so the warp fades out before the blend mask does, and the warp depends only
on smoothed landmarks and a slowly varying emotion, so it is stable over time.

Two things a warp alone cannot do: :mod:`sserd_core.landmark.shading` draws the folds of the target
expression (nasolabial folds, frown lines, forehead lines, nose wrinkles) into the warped
pixels as a luminance gain, in the face's own colours; and :mod:`sserd_core.landmark.occlusion`
finds what covers the face (a hand, a microphone, hair), where the flow and the blend fade
to zero so the occluder is left as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from .. import expression, geometry
from ..controls import N_CONTROLS
from ..blend import paste_back_patch
from ..media.patch import Patch
from ..editor import FaceEditor, FaceFrame
from .glasses import find_glasses, glasses_mask
from .occlusion import occlusion_mask
from .shading import fold_amounts, shading_gain

_RING_POINTS = 20
#: how far (IOD) from a pinned point (a glasses frame) a control point moves in full
_PIN_CLEARANCE = 0.15


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        k = r2 * np.log(r2)
    return np.nan_to_num(k)


def tps_fit(src: np.ndarray, dst: np.ndarray, reg: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin-plate spline mapping ``src`` points ``[n, 2]`` onto ``dst`` ``[n, 2]``: (weights, affine, centres)."""
    n = len(src)
    d2 = ((src[:, None, :] - src[None, :, :]) ** 2).sum(-1)
    K = _tps_kernel(d2) + reg * np.eye(n)
    P = np.hstack([np.ones((n, 1)), src])
    A = np.zeros((n + 3, n + 3))
    A[:n, :n] = K
    A[:n, n:] = P
    A[n:, :n] = P.T
    b = np.zeros((n + 3, 2))
    b[:n] = dst
    # OpenCV's LU. Both it (from 100 unknowns) and NumPy call OpenBLAS, whose thread pool spins
    # on a busy CPU (10-100x slower here): the pipeline runs the render with BLAS on one thread
    ok, sol = cv2.solve(A, b, flags=cv2.DECOMP_LU)
    if not ok:
        sol = np.linalg.lstsq(A, b, rcond=None)[0]
    return sol[:n], sol[n:], src


def tps_eval(params, pts: np.ndarray) -> np.ndarray:
    """Evaluate a fitted spline at ``pts`` ``[m, 2]`` (float32 inside: the flow needs no more).

    Element-wise, in one buffer, and one small product (no ``nan_to_num``: the squared distances
    are kept above 0)."""
    w, a, centres = (np.asarray(x, np.float32) for x in params)
    pts = np.asarray(pts, np.float32)
    px, py = pts[:, 0:1], pts[:, 1:2]
    k = px - centres[:, 0]  # one [m, n] buffer, updated in place: squared distance, then r² log r²
    k *= k
    dy = py - centres[:, 1]
    dy *= dy
    k += dy
    np.maximum(k, 1e-12, out=k)  # > 0: no log(0) to clean up
    np.log(k, out=dy)
    k *= dy
    out = cv2.gemm(k, w, 1.0, None, 0.0)
    out += a[0]
    out += px * a[1]
    out += py * a[2]
    return out


def face_ring(landmarks: np.ndarray, scale: float = 1.45, n: int = _RING_POINTS) -> np.ndarray:
    """Fixed points ``[n, 2]`` on an ellipse around the face (brows to chin, plus forehead room)."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    c = (lo + hi) / 2
    c = c - np.array([0.0, 0.12 * (hi[1] - lo[1])])  # room above the brows
    rx, ry = (hi[0] - lo[0]) / 2 * scale, (hi[1] - lo[1]) / 2 * scale * 1.15
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([c[0] + rx * np.cos(a), c[1] + ry * np.sin(a)], 1).astype(np.float32)


#: Lips apart: (opening where the lips' displacement starts to shrink, the span over which it
#: reaches its floor, both IOD units; the floor of its sideways part, of its up-down part).
#: With the lips apart the teeth show, and teeth do not bend: moving the mouth corners up or
#: down while the lip centres stay pinned bent the open mouth of a laugh into a Λ, teeth and
#: all — a mouth no one makes — and dlib's fit of the inner lips on it drifted off the speech
#: (docs/EDIT_STRENGTH.md, "Open lips"). Keeping more of the sideways part (0.6: a narrower
#: mouth squeezes the teeth rather than bending them) helped the laughing clip a little and
#: cost the hand-over-mouth clip more, so both floors are 0.3.
OPEN_LIPS = (0.03, 0.10, 0.3, 0.3)
_LIPS = expression.LIPS_OUTER + expression.LIPS_INNER


def lip_factors(opening: float) -> np.ndarray:
    """``[2]``: the share of the emotion displacement (sideways, up-down) the lips keep at a slowly
    varying inner-lip ``opening`` (IOD units): all of it with the lips together, the floors apart."""
    start, span, floor_x, floor_y = OPEN_LIPS
    t = float(np.clip((opening - start) / span, 0.0, 1.0))
    return 1.0 - (1.0 - np.array([floor_x, floor_y], np.float32)) * t


def split_target(target: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``(emotion [7], controls [N_CONTROLS] or None)`` of one frame's target: an emotion vector, or one
    with the expression controls' values after it (what the render stage hands an edit with controls)."""
    t = np.asarray(target, np.float32)
    if len(t) == 7:
        return t, None
    if len(t) != 7 + N_CONTROLS:
        raise ValueError(f"a target is 7 emotion values or 7 + {N_CONTROLS} with the controls, got {len(t)}")
    return t[:7], t[7:]


def _emotion_delta(face: FaceFrame, target: np.ndarray) -> np.ndarray:
    """Canonical displacement ``[N_CONTROL, 2]`` of target − source emotion (and the target's expression
    controls), content points pinned, the lips' share scaled by :func:`lip_factors` of the clip's opening
    around this frame, the lips' height and the lid folds kept (the believability bounds)."""
    emotion, controls = split_target(target)
    delta = expression.edit_displacement(emotion, face.source_emotion, controls)
    delta[expression.CONTENT_POINTS] = 0.0
    opening = face.mouth_open
    if opening is None or not np.isfinite(opening):
        opening = expression.mouth_opening(face.landmarks)
    delta[_LIPS] *= lip_factors(opening)
    src = geometry.apply(face.to_canonical, expression.control_points(face.landmarks))
    return keep_lip_thickness(src, expression.keep_lid_crease_between(src, delta))


#: (outer, inner) landmark pairs across each lip: upper lip (left, centre, right), then lower lip
UPPER_LIP_PAIRS = ((50, 61), (51, 62), (52, 63))
LOWER_LIP_PAIRS = ((58, 67), (57, 66), (56, 65))
#: the range of a lip's height (outer to inner edge) an edit may give it, as a share of the source's
LIP_THICKNESS = (0.85, 1.15)


def keep_lip_thickness(src: np.ndarray, delta: np.ndarray, bounds=LIP_THICKNESS) -> np.ndarray:
    """``delta`` ``[N_CONTROL, 2]`` with each lip's height (outer to inner edge, canonical y) kept within
    ``bounds`` of the source's (``src``: canonical control points), by moving the lip's outer edge.

    Lips are not rubber: a smile whose corners rise while the lip centres stay (they are the speech)
    thinned and bulged the lower lip, disgust's lowered lower lip swelled it, a sad chin raise pushed it
    up into a pout. Real lips keep their volume: stretched sideways they thin a little, and they do not
    swell. Modifies and returns ``delta``."""
    lo, hi = bounds
    for pairs, sign in ((UPPER_LIP_PAIRS, 1.0), (LOWER_LIP_PAIRS, -1.0)):
        for outer, inner in pairs:
            h0 = sign * (src[inner, 1] - src[outer, 1])  # > 0: the inner edge lies below the outer one (upper lip)
            if h0 <= 1e-4:
                continue
            h1 = sign * ((src[inner, 1] + delta[inner, 1]) - (src[outer, 1] + delta[outer, 1]))
            h = min(max(h1, lo * h0), hi * h0)
            if h != h1:
                delta[outer, 1] = src[inner, 1] + delta[inner, 1] - sign * h - src[outer, 1]
    return delta


def _iod_px(face: FaceFrame) -> float:
    """The face's inter-ocular distance in frame pixels (the scale of its canonical transform)."""
    return 1.0 / max(float(np.sqrt(abs(np.linalg.det(face.to_canonical[:, :2])))), 1e-6)


def target_landmarks(face: FaceFrame, target: np.ndarray) -> np.ndarray:
    """Edited landmarks ``[68, 2]`` (frame px): source + displacement(target − source emotion); content pinned."""
    delta = _emotion_delta(face, target)[:68]
    return face.landmarks + geometry.displacement_to_frame(face.to_canonical, delta)


def target_skin_points(face: FaceFrame, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(source, edited) skin points ``[K, 2]`` (frame px), see :data:`sserd_core.expression.SKIN_POINTS`."""
    src = expression.control_points(face.landmarks)[68:]
    delta = _emotion_delta(face, target)[68:]
    return src, src + geometry.displacement_to_frame(face.to_canonical, delta)


def _pinned(glasses, none: np.ndarray) -> np.ndarray:
    """The points pinned on a glasses frame (frame px), or ``none`` without one."""
    return glasses.points.astype(np.float64) if glasses is not None and glasses.amount >= 0.5 else none


def _fade_near_pins(src_lm: np.ndarray, dst_lm: np.ndarray, pinned: np.ndarray, face: FaceFrame) -> np.ndarray:
    """``dst_lm`` with each control point's move faded out towards the pinned points (a glasses frame): a
    point that moves right beside a pinned one would fold the spline between them (a raised inner brow
    just above a glasses frame's top bar)."""
    if not len(pinned):
        return dst_lm
    near = np.sqrt(((src_lm[:, None, :] - pinned[None]) ** 2).sum(-1)).min(1)
    t = np.clip(near / (_PIN_CLEARANCE * _iod_px(face)), 0.0, 1.0)[:, None]
    return src_lm + (dst_lm - src_lm) * (t * t * (3.0 - 2.0 * t))


def _ring_box(frame: np.ndarray, ring: np.ndarray) -> tuple:
    """``(x0, y0, x1, y1)``: the face ROI, the box of the fixed ring around the face (:func:`face_ring`) clipped to
    the frame, frame px."""
    x0, y0 = np.floor(np.maximum(ring.min(0), 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(ring.max(0), [frame.shape[1] - 1, frame.shape[0] - 1])).astype(int) + 1
    return x0, y0, x1, y1  # NumPy ints: the flow's float32 grids take their promotion rules from them


@dataclass
class FrameRoom:
    """How far the warp's flow may reach beside a glasses frame: ``room`` ``float32 [h, w]`` over the face ROI whose
    corner is ``origin`` (frame px): 7/10 of each pixel's distance to the frame (0 on it); ``amount``: how surely
    the face wears glasses (:class:`~sserd_core.landmark.glasses.Glasses`)."""

    room: np.ndarray
    origin: tuple[int, int]
    amount: float

    @classmethod
    def of(cls, rigid: np.ndarray, origin: tuple[int, int], amount: float) -> "FrameRoom":
        """From the frame's mask over the ROI (its feathered edge counts as frame)."""
        return cls(0.7 * cv2.distanceTransform((rigid < 0.02).astype(np.uint8), cv2.DIST_L2, 3), origin, amount)

    def at(self, pts: np.ndarray) -> np.ndarray:
        """``[K]`` the room at ``pts`` ``[K, 2]`` (frame px)."""
        h, w = self.room.shape
        ix = np.clip(np.round(pts[:, 0] - self.origin[0]).astype(int), 0, w - 1)
        iy = np.clip(np.round(pts[:, 1] - self.origin[1]).astype(int), 0, h - 1)
        return self.room[iy, ix].astype(np.float64)


def _frame_room(frame: np.ndarray, face: FaceFrame, glasses) -> Optional[FrameRoom]:
    """The :class:`FrameRoom` beside the glasses frame of this face, or None without one."""
    if glasses is None or glasses.mask is None:
        return None
    x0, y0, x1, y1 = _ring_box(frame, face_ring(face.landmarks))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return FrameRoom.of(glasses_mask(glasses, (x0, y0, x1, y1))[0], (x0, y0), float(glasses.amount))


#: each brow with the skin it carries (forehead, lid fold): moved as one piece beside a glasses frame
_BROW_GROUPS = tuple([*brow, *(68 + expression.SKIN_NAMES.index(k + side) for k in ("forehead_inner", "forehead_mid",
                                                                                   "lid_crease"))]
                     for brow, side in ((expression.BROW_R, "_r"), (expression.BROW_L, "_l")))
#: the skin between the brows, which both carry: held as the more held of the two
_BETWEEN_BROWS = [68 + expression.SKIN_NAMES.index(k) for k in ("forehead_centre", "glabella")]
#: a move this short (frame px) fits anywhere (landmark jitter beside a frame does not hold a brow)
_ROOM_FLOOR = 0.25


def _brows_held_to_room(src: np.ndarray, d: np.ndarray, room: Optional[FrameRoom]) -> np.ndarray:
    """``d`` ``[K, 2]`` (frame px: the moves of the control points at ``src``) with each brow and the skin it carries
    scaled as one piece, so that no point of it moves farther than the room beside a glasses frame where it lands
    (the warp samples the source from there); the skin between the brows as the more held brow. The scale is faded
    in with the frame's ``amount``. Modified and returned.

    The warp's flow is held short of the frame pixel by pixel; a brow that the frame crosses or touches (round
    frames reach the brows) then moved in full where it was clear of the frame and not at all beside it: raised for
    surprise or fear, its lower edge was stretched into a dark block between the frame and the raised part. A brow
    that cannot move clear of the frame moves less, all of it alike (a smaller edit, not a smeared one)."""
    if room is None:
        return d
    held = []
    for group in _BROW_GROUPS:
        need = np.linalg.norm(d[group], axis=1)
        s = 0.0
        for s in np.linspace(1.0, 0.0, 21):  # the largest scale at which every point lands where it has room
            if np.all(s * need <= np.maximum(room.at(src[group] + s * d[group]), _ROOM_FLOOR)):
                break
        s = 1.0 - room.amount * (1.0 - float(s))
        d[group] *= s
        held.append(s)
    d[_BETWEEN_BROWS] *= min(held)
    return d


@dataclass
class Flow:
    """One frame's warp: for each output pixel of the box ``E``, where the source is sampled.

    - ``map_x``, ``map_y``: ``float32 [eh, ew]`` source positions (frame px) of the pixels of ``E``.
    - ``roi``: ``(x0, y0)``, the frame px of the face ROI's corner; ``box``: ``E`` = ``(ex0, ey0, ex1, ey1)``
      in ROI px (so ``E``'s first pixel is frame px ``(x0 + ex0, y0 + ey0)``).
    - ``ellipse``: the blend ellipse ``(cx, cy, rx, ry)`` in ROI px.
    - ``occluded``: ``float32`` ROI-sized mask of what the blend keeps (an occluder, a glasses frame), or None.
    - ``dst_lm``: the edited control points (frame px).
    """

    map_x: np.ndarray
    map_y: np.ndarray
    roi: tuple
    box: tuple
    ellipse: tuple
    occluded: Optional[np.ndarray]
    dst_lm: np.ndarray

    def stretch(self) -> tuple[np.ndarray, np.ndarray]:
        """``(area, anisotropy)`` ``float32 [eh, ew]``: the local area ratio of the warp (source area per
        output area; 1 = unchanged, ≤ 0 = the warp folds over) and the ratio of its largest to its
        smallest local stretch (1 = no shear), from the backward map's Jacobian."""
        ax, ay = np.gradient(self.map_x.astype(np.float64))[::-1]
        bx, by = np.gradient(self.map_y.astype(np.float64))[::-1]
        det = ax * by - ay * bx
        # singular values of [[ax, ay], [bx, by]]
        s = ax * ax + ay * ay + bx * bx + by * by
        root = np.sqrt(np.maximum(s * s - 4 * det * det, 0.0))
        big, small = np.sqrt((s + root) / 2), np.sqrt(np.maximum((s - root) / 2, 0.0))
        return det.astype(np.float32), (big / np.maximum(small, 1e-6)).astype(np.float32)


class LandmarkEditor(FaceEditor):
    """The embedded default backend: landmark-driven dense warp (CPU or GPU, no network weights).

    ``grid_step``: the spline is evaluated every ``grid_step`` pixels and upsampled
    (the flow is smooth, so this loses nothing visible and saves time).
    """

    name = "landmark"
    parallel_safe = True  # every frame is edited from its own inputs only
    takes_controls = True

    def __init__(self, device: Optional[str] = None, grid_step: int = 8, interpolation: str = "bicubic",
                 backend: str = "auto", shading: bool = True, occlusion: bool = True, glasses: bool = True):
        self.shading = shading
        self.glasses = glasses
        self.occlusion = occlusion
        self.device = _device(device)
        self.grid_step = max(1, int(grid_step))
        self.interpolation = interpolation
        self.backend = backend  # "auto": cv2.remap on CPU, grid_sample on GPU; "torch": grid_sample everywhere

    def edit(self, frames: Sequence[np.ndarray], faces: Sequence[Optional[FaceFrame]],
             targets: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.edit_one(f, face, t) for f, face, t in zip(frames, faces, targets)]

    def edit_patches(self, frames: Sequence[np.ndarray], faces: Sequence[Optional[FaceFrame]],
                     targets: Sequence[np.ndarray]) -> list[Patch]:
        if type(self).edit is not LandmarkEditor.edit:  # a subclass that changes edit() is heard
            return super().edit_patches(frames, faces, targets)
        return [self.edit_one_patch(f, face, t) for f, face, t in zip(frames, faces, targets)]

    def target_landmarks(self, face: FaceFrame, target: np.ndarray) -> np.ndarray:
        """Edited landmarks ``[68, 2]`` (frame px) for one frame; a subclass may change what moves
        (the evaluation's naive baseline moves the mouth too)."""
        return target_landmarks(face, target)

    def control_shares(self, frame: np.ndarray, face: Optional[FaceFrame],
                       target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(shown, reached)``, each ``float32 [N_CONTROLS]`` (NaN for a control at 0, or where no face is tracked).

        ``shown``: how far the edited points move when the control is added to everything else the target asks
        for, against how far the control would move them if no limit held it (the rate of a small step of the
        control alone, times its value; both in frame px). What scales a control evenly at every value (an open
        mouth keeps part of a lip motion, a glasses frame fades the brows and lids beside it) is in that rate;
        what holds it at a limit is not (the reach of a face part, the lips' height, the lid folds). Below 1 the
        control saturates: pushed further, it shows no more.

        ``reached``: the same motion against the control's own displacement with nothing scaling it either: how
        much of a control moves this face at all (a brow behind a thick glasses frame, lips apart for speech)."""
        emotion, controls = split_target(target)
        shown = np.full(N_CONTROLS, np.nan, np.float32)
        reached = np.full(N_CONTROLS, np.nan, np.float32)
        if face is None or controls is None or not np.any(controls):
            return shown, reached
        glasses = find_glasses(frame, face.landmarks, face.to_canonical) if self.glasses else None
        pinned = _pinned(glasses, np.zeros((0, 2)))
        src = expression.control_points(face.landmarks).astype(np.float64)
        frame_room = _frame_room(frame, face, glasses)  # the flow is held short of a frame (see flow())
        room = None if frame_room is None else frame_room.at(src)

        def moved(t):
            delta = geometry.displacement_to_frame(face.to_canonical, _emotion_delta(face, t))
            d = _brows_held_to_room(src, _fade_near_pins(src, src + delta, pinned, face) - src, frame_room)
            if room is not None:
                d *= np.minimum(1.0, room / np.maximum(np.linalg.norm(d, axis=1), 1e-9))[:, None]
            return d

        full = moved(target)
        step = 0.02
        for c in np.flatnonzero(controls):
            without = np.array(target, np.float32)
            without[7 + c] = 0.0
            alone = np.concatenate([np.asarray(face.source_emotion, np.float32), np.zeros(N_CONTROLS, np.float32)])
            alone[7 + c] = step * np.sign(controls[c])
            free = moved(alone) * (abs(float(controls[c])) / step)  # the control unheld (linear scalings kept)
            own = geometry.displacement_to_frame(face.to_canonical,
                                                 controls[c] * expression.CONTROLS_BASIS[c]).astype(np.float64)
            gained = full - moved(without)
            for out, ref in ((shown, free), (reached, own)):
                need = float((ref * ref).sum())
                if need > 1e-12:
                    out[c] = np.clip(float((gained * ref).sum()) / need, 0.0, 1.0)
        return shown, reached

    def edit_one(self, frame: np.ndarray, face: Optional[FaceFrame], target: np.ndarray) -> np.ndarray:
        """One edited frame (``frame`` itself where nothing changes)."""
        return self.edit_one_patch(frame, face, target).apply()

    def flow(self, frame: np.ndarray, face: Optional[FaceFrame], target: np.ndarray) -> Optional["Flow"]:
        """The warp of one frame (:class:`Flow`), or None where the frame stays as it is."""
        if face is None:
            return None
        src_skin, dst_skin = target_skin_points(face, target)
        src_lm = np.vstack([face.landmarks, src_skin]).astype(np.float64)
        dst_lm = np.vstack([self.target_landmarks(face, target), dst_skin]).astype(np.float64)
        if np.abs(dst_lm - src_lm).max() < 0.05:
            return None  # nothing to change (e.g. neutral → neutral)
        ring = face_ring(face.landmarks).astype(np.float64)
        x0, y0, x1, y1 = _ring_box(frame, ring)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        h, w = y1 - y0, x1 - x0
        # the blend mask (an ellipse inside the fixed ring, where the flow has decayed) is exactly 0
        # outside its bounding box E (ROI px [ey0:ey1, ex0:ex1]): the flow, warp, shading and blend
        # are computed inside E only (outside it the frame stays the source's, as it would anyway),
        # and the spline only at the flow-grid nodes whose upsampled values reach the ellipse
        ell = _ellipse_params(ring - [x0, y0], shrink=0.86)
        ex0, ey0, ex1, ey1 = _ellipse_box(ell, w, h)
        if ex1 - ex0 < 2 or ey1 - ey0 < 2:
            return None
        # a glasses frame is rigid: points on its outlines are pinned (the flow is 0 there and grows
        # smoothly into the lenses, where the eyes still move)
        glasses = find_glasses(frame, face.landmarks, face.to_canonical) if self.glasses else None
        pinned = _pinned(glasses, ring[:0])
        rigid = glasses_mask(glasses, (x0, y0, x1, y1))[0] if glasses is not None and glasses.mask is not None else None
        dst_lm = _fade_near_pins(src_lm, dst_lm, pinned, face)
        if rigid is not None:
            dst_lm = src_lm + _brows_held_to_room(src_lm, dst_lm - src_lm,
                                                  FrameRoom.of(rigid, (x0, y0), float(glasses.amount)))
        # backward map: for each output (edited) position, where to sample in the source
        ctrl_dst = np.vstack([dst_lm, ring, pinned])
        ctrl_src = np.vstack([src_lm, ring, pinned])
        scale = float(np.linalg.norm(ring.max(0) - ring.min(0)))
        params = tps_fit(ctrl_dst / scale, ctrl_src / scale)
        gs = self.grid_step
        nodes_x = np.arange(0, w + gs, gs, dtype=np.float64)  # the grid over the whole ROI, as ever
        nodes_y = np.arange(0, h + gs, gs, dtype=np.float64)
        ny, nx = len(nodes_y), len(nodes_x)
        full_w, full_h = (nx - 1) * gs + 1, (ny - 1) * gs + 1
        need = _nodes_needed(ell, (ex0, ey0, ex1, ey1), (nx, ny), (full_w, full_h))
        iy, ix = np.nonzero(need)
        pts = np.stack([nodes_x[ix] + x0, nodes_y[iy] + y0], 1)
        src_pts = (tps_eval(params, pts / scale) * scale).astype(np.float32)
        # nodes no pixel of the ellipse reads keep the identity (any value would do)
        grid_x = np.empty((ny, nx), np.float32)
        grid_y = np.empty((ny, nx), np.float32)
        grid_x[:] = (nodes_x + x0).astype(np.float32)
        grid_y[:] = (nodes_y + y0).astype(np.float32)[:, None]
        grid_x[iy, ix] = src_pts[:, 0]
        grid_y[iy, ix] = src_pts[:, 1]
        # upsample the coarse map to full ROI resolution, then keep E
        map_x = cv2.resize(grid_x, (full_w, full_h), interpolation=cv2.INTER_LINEAR)[ey0:ey1, ex0:ex1]
        map_y = cv2.resize(grid_y, (full_w, full_h), interpolation=cv2.INTER_LINEAR)[ey0:ey1, ex0:ex1]
        # what the warp must not bend: an occluder (a hand, a microphone, hair) and a glasses frame.
        # ``occluded``: where the blend keeps the source
        gx = np.arange(ex0, ex1, dtype=np.float32)[None, :] + x0  # the identity map over E (frame px)
        gy = np.arange(ey0, ey1, dtype=np.float32)[:, None] + y0
        occluded = None
        if self.occlusion:
            occluded, around = occlusion_mask(frame, face.landmarks, face.to_canonical, (x0, y0, x1, y1), spread=True)
            box = _in_box(_nonzero_box(around, 0.01), (ey0, ey1, ex0, ex1))
            if box is not None:
                # no flow under it (and smoothly less around it)
                by0, by1, bx0, bx1 = box
                keep = 1.0 - around[by0:by1, bx0:bx1]
                sub = np.s_[by0 - ey0:by1 - ey0, bx0 - ex0:bx1 - ex0]
                map_x[sub] = gx[:, sub[1]] + (map_x[sub] - gx[:, sub[1]]) * keep
                map_y[sub] = gy[sub[0]] + (map_y[sub] - gy[sub[0]]) * keep
                # and no skin beside it samples it: where the flow would fetch pixels from under the
                # (feathered) mask, it is scaled down so the skin is taken from beside it instead (a smile's
                # cheek raise drew a fingertip resting beside the nose up into the cheek). The lips are left
                # out: their flow is the lip edit, and freezing part of a mouth beside the fingers bent it
                # (dlib's re-fit of the hand clip's mouth opening: correlation 0.49 -> 0.31)
                lands = cv2.remap(around, map_x - np.float32(x0), map_y - np.float32(y0), cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
                keep = np.clip(1.0 - 1.5 * lands, 0.0, 1.0)
                lips = np.zeros(keep.shape, np.uint8)
                cv2.fillPoly(lips, [np.round(face.landmarks[48:60] - [x0 + ex0, y0 + ey0]).astype(np.int32)], 1)
                keep[lips > 0] = 1.0
                map_x[...] = gx + (map_x - gx) * keep
                map_y[...] = gy + (map_y - gy) * keep
        if rigid is not None:
            # a glasses frame is rigid and in front of the face: the pinned points bring the flow smoothly
            # towards zero on it, the blend keeps its pixels, and no pixel samples it: the flow is held
            # shorter than the distance to the frame (7/10 of it; 0 on it), so the warp neither draws a
            # second copy of the frame (a raised brow drew one of a top bar) nor folds over (fading the flow
            # as a fraction of itself, as for an occluder, folded the skin above the bar: a 0.19 IOD brow
            # raise against a fade over 0.05 IOD)
            fx, fy = map_x - gx, map_y - gy
            room = FrameRoom.of(rigid[ey0:ey1, ex0:ex1], (x0 + ex0, y0 + ey0), float(glasses.amount)).room
            reach = np.sqrt(fx * fx + fy * fy)
            scale = np.minimum(1.0, room / np.maximum(reach, 1e-6))
            map_x[...] = gx + fx * scale
            map_y[...] = gy + fy * scale
            occluded = rigid if occluded is None else np.maximum(occluded, rigid)
        return Flow(map_x, map_y, (x0, y0), (ex0, ey0, ex1, ey1), ell, occluded, dst_lm)

    def edit_one_patch(self, frame: np.ndarray, face: Optional[FaceFrame], target: np.ndarray) -> Patch:
        """One edited frame, as the box that changed (:class:`~sserd_core.media.Patch`)."""
        f = self.flow(frame, face, target)
        if f is None:
            return Patch(frame)
        map_x, map_y, occluded, dst_lm, ell = f.map_x, f.map_y, f.occluded, f.dst_lm, f.ellipse
        (x0, y0), (ex0, ey0, ex1, ey1) = f.roi, f.box
        eh, ew = ey1 - ey0, ex1 - ex0
        if self.device.type == "cpu" and self.backend != "torch":
            # the CPU resamples only the ellipse: bands of rows, each as wide as the ellipse in it (the
            # corners of E keep the source's pixels, which the mask does not show)
            crop = frame[y0 + ey0:y0 + ey1, x0 + ex0:x0 + ex1].copy()
            for r0, r1, c0, c1 in _ellipse_spans(ell, (ex0, ey0, ex1, ey1)):
                crop[r0:r1, c0:c1] = self._warp(frame, x0 + ex0 + c0, y0 + ey0 + r0, c1 - c0, r1 - r0,
                                                map_x[r0:r1, c0:c1], map_y[r0:r1, c0:c1])
        else:
            crop = self._warp(frame, x0 + ex0, y0 + ey0, ew, eh, map_x, map_y)
        if self.shading:
            iod = _iod_px(face)
            gain = shading_gain((eh, ew), dst_lm - [x0 + ex0, y0 + ey0], iod,
                                fold_amounts(*_fold_args(target, face)), crop)
            if gain is not None:
                (g, (gx0, gy0)) = gain
                part = crop[gy0:gy0 + g.shape[0], gx0:gx0 + g.shape[1]]
                part[...] = cv2.multiply(part, cv2.merge([g] * 3), dtype=cv2.CV_8U)
        # blend mask: the ellipse, feathered
        mask = _ellipse_weights(ell, (ex0, ey0, ex1, ey1), feather=0.18)
        box = _in_box(_nonzero_box(occluded, 0.0), (ey0, ey1, ex0, ex1)) if occluded is not None else None
        if box is not None:
            by0, by1, bx0, bx1 = box
            mask[by0 - ey0:by1 - ey0, bx0 - ex0:bx1 - ex0] *= 1.0 - occluded[by0:by1, bx0:bx1]
        crop_to_frame = np.array([[1, 0, x0 + ex0], [0, 1, y0 + ey0]], np.float64)
        # the warp moves the source's own pixels, so their colours already match the frame:
        # colour matching (for generated pixels, the neural backend) is skipped here
        return paste_back_patch(frame, crop, crop_to_frame, mask, colour_match=False, levels=3)

    def _warp(self, frame, x0, y0, w, h, map_x, map_y) -> np.ndarray:
        """Resample the frame at the backward-map positions (frame px) → ``uint8 [h, w, 3]`` crop.

        On a GPU (or with ``backend="torch"``) this is ``torch.nn.functional.grid_sample``;
        on the CPU ``cv2.remap`` computes the same bicubic resampling about 5x faster on a
        face-sized crop, so it is the default there (tests check the two agree).
        """
        if self.device.type == "cpu" and self.backend != "torch":
            interp = cv2.INTER_CUBIC if self.interpolation == "bicubic" else cv2.INTER_LINEAR
            return cv2.remap(frame, map_x, map_y, interp, borderMode=cv2.BORDER_REPLICATE)
        H, W = frame.shape[:2]
        torch = _torch()
        F = torch.nn.functional
        dev = torch.device(str(self.device))
        with _cpu_threads(1 if self.device.type == "cpu" else None):
            img = torch.from_numpy(np.ascontiguousarray(frame)).to(dev).permute(2, 0, 1)[None].float()
            gx = torch.from_numpy(map_x).to(dev) / max(W - 1, 1) * 2 - 1
            gy = torch.from_numpy(map_y).to(dev) / max(H - 1, 1) * 2 - 1
            grid = torch.stack([gx, gy], -1)[None]
            warped = F.grid_sample(img, grid, mode=self.interpolation, padding_mode="border", align_corners=True)
            return warped[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).cpu().numpy()


def _fold_args(target: np.ndarray, face: FaceFrame) -> tuple:
    emotion, controls = split_target(target)
    return emotion, np.asarray(face.source_emotion), controls


def _nonzero_box(a: np.ndarray, above: float, step: int = 4) -> Optional[tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)`` bounding the entries of ``a`` greater than ``above`` (checked on a
    ``step``-subsampled grid, widened by ``step``), or None when there are none."""
    ys, xs = np.nonzero(a[::step, ::step] > above)
    if len(ys) == 0:
        return None
    h, w = a.shape
    return (max(0, step * ys.min() - step), min(h, step * ys.max() + step + 1),
            max(0, step * xs.min() - step), min(w, step * xs.max() + step + 1))


def ellipse_mask(shape: tuple[int, int], ring: np.ndarray, shrink: float = 0.86, feather: float = 0.18) -> np.ndarray:
    """``float32 [h, w]`` mask: 1 inside the ellipse through ``ring`` scaled by ``shrink``, falling smoothly to 0
    over the outer ``feather`` fraction of its radius (exactly 0 outside)."""
    h, w = shape
    return _ellipse_weights(_ellipse_params(ring, shrink), (0, 0, w, h), feather)


def _ellipse_params(ring: np.ndarray, shrink: float) -> tuple[float, float, float, float]:
    """``(cx, cy, rx, ry)``: the ellipse of :func:`ellipse_mask` (centre: the ring's mean; radii: its half extents × ``shrink``)."""
    c = ring.mean(0)
    rx = (ring[:, 0].max() - ring[:, 0].min()) / 2 * shrink
    ry = (ring[:, 1].max() - ring[:, 1].min()) / 2 * shrink
    return float(c[0]), float(c[1]), float(rx), float(ry)


def _ellipse_box(ell, w: int, h: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the pixels of a ``w`` x ``h`` image where the ellipse's mask can be non-zero."""
    cx, cy, rx, ry = ell
    return (max(0, int(np.floor(cx - rx))), max(0, int(np.floor(cy - ry))),
            min(w, int(np.ceil(cx + rx)) + 1), min(h, int(np.ceil(cy + ry)) + 1))


def _ellipse_weights(ell, box: tuple[int, int, int, int], feather: float) -> np.ndarray:
    """:func:`ellipse_mask`'s values over the pixels ``box`` = (x0, y0, x1, y1): ``float32 [y1 - y0, x1 - x0]``.

    Squared normalised radii per row and column in float64, summed and rooted in float32 (the
    radius to within one float32 step of the float64 computation)."""
    cx, cy, rx, ry = ell
    x0, y0, x1, y1 = box
    ax = (((np.arange(x0, x1) - cx) / rx) ** 2).astype(np.float32)
    ay = (((np.arange(y0, y1) - cy) / ry) ** 2).astype(np.float32)
    t = ay[:, None] + ax[None, :]
    np.sqrt(t, out=t)
    np.subtract(np.float32(1.0), t, out=t)
    t /= np.float32(feather)
    np.clip(t, 0.0, 1.0, out=t)
    m = t * t  # smoothstep: t² (3 − 2t)
    t *= -2.0
    t += 3.0
    m *= t
    return m


def _ellipse_spans(ell, box: tuple[int, int, int, int], band: int = 32) -> list[tuple[int, int, int, int]]:
    """``(r0, r1, c0, c1)`` per band of ``band`` rows of ``box`` = (x0, y0, x1, y1): the rows and the
    columns (relative to the box) that hold every pixel of the band inside the ellipse ``ell``
    (its widest row's extent, one pixel of slack each side)."""
    cx, cy, rx, ry = ell
    x0, y0, x1, y1 = box
    spans = []
    for r0 in range(0, y1 - y0, band):
        r1 = min(r0 + band, y1 - y0)
        nearest = min(max(cy, y0 + r0), y0 + r1 - 1)  # the band's row nearest the centre: its widest
        half = rx * np.sqrt(max(0.0, 1.0 - ((nearest - cy) / ry) ** 2))
        c0 = max(0, int(np.floor(cx - half)) - 1 - x0)
        c1 = min(x1 - x0, int(np.ceil(cx + half)) + 2 - x0)
        if c1 > c0:
            spans.append((r0, r1, c0, c1))
    return spans


def _nodes_needed(ell, box: tuple[int, int, int, int], n: tuple[int, int], full: tuple[int, int]) -> np.ndarray:
    """``bool [ny, nx]``: the nodes of an ``nx`` x ``ny`` grid that ``cv2.resize`` (bilinear) to ``full`` =
    (width, height) reads for some pixel of ``box`` = (x0, y0, x1, y1) inside the ellipse ``ell``
    (a node reaches the pixels whose sampling position lies within one node of it; one pixel of
    slack each way)."""
    cx, cy, rx, ry = ell
    x0, y0, x1, y1 = box

    def reach(count: int, size: int, lo: int, hi: int, c: float, r: float) -> np.ndarray:
        k = count / size  # cv2.resize: output pixel p samples the input at (p + 0.5) k − 0.5
        j = np.arange(count, dtype=np.float64)
        first, last = (j - 0.5) / k - 1.5, (j + 1.5) / k + 0.5
        first[0], last[-1] = -np.inf, np.inf  # the edge nodes also serve the clamped pixels beyond
        first, last = np.maximum(first, lo), np.minimum(last, hi - 1)
        d = np.where(c < first, first - c, np.where(c > last, c - last, 0.0)) / r
        d[first > last] = np.inf  # no pixel of the box reads this node
        return d * d

    dx = reach(n[0], full[0], x0, x1, cx, rx)
    dy = reach(n[1], full[1], y0, y1, cy, ry)
    return dy[:, None] + dx[None, :] < 1.0 + 1e-3


def _in_box(box, outer) -> Optional[tuple[int, int, int, int]]:
    """The part of ``box`` = (y0, y1, x0, x1) inside ``outer`` (same layout), or None (also for a None ``box``)."""
    if box is None:
        return None
    y0, y1 = max(box[0], outer[0]), min(box[1], outer[1])
    x0, x1 = max(box[2], outer[2]), min(box[3], outer[3])
    return (y0, y1, x0, x1) if y1 > y0 and x1 > x0 else None


class _CPU:
    """The CPU as a device, without importing torch: the default landmark path runs on OpenCV alone."""

    type = "cpu"
    index = None

    def __str__(self) -> str:
        return "cpu"

    __repr__ = __str__

    def __eq__(self, other) -> bool:
        return str(other) == "cpu"

    def __hash__(self) -> int:
        return hash("cpu")


def _torch():
    """torch, imported on first use (the GPU warp, ``backend="torch"``); a one-line error when missing."""
    try:
        import torch
    except ImportError:
        from ..errors import SSERDError

        raise SSERDError("This needs torch, which is not installed: pip install 'comfyui-sserd[gpu]' "
                         "(the default CPU edit does not).") from None
    return torch


def _device(device):
    """``None``/"cpu" → the CPU (no torch import); anything else → a ``torch.device``."""
    if device is None or str(device) == "cpu":
        return _CPU()
    return _torch().device(device)


@contextlib.contextmanager
def _cpu_threads(n: Optional[int]):
    """Run small CPU tensor ops on ``n`` threads (more threads only add overhead on a face-sized crop)."""
    if n is None:
        yield
        return
    torch = _torch()
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if old != n:
            torch.set_num_threads(old)

"""Glasses: found so the warp moves the face behind them and leaves the frame rigid.

A warp that moves a cheek or a brow moves whatever lies on it: a smile's cheek raise squashed
the lenses of a pair of glasses into kidney shapes, lowered brows folded the bridge into a V.
A glasses frame is rigid and sits in front of the face, so the renderer treats its pixels as
it treats an occluder's (:mod:`sserd_core.landmark.occlusion`): no flow on them, no skin beside
them samples them, and the blend keeps the source's pixels there. The eyes and lids seen through
the lenses are not part of the frame and still move.

No glasses model ships in a wheel this project may depend on; the frame is found from what
makes it a frame, in canonical face space (eye centres at (∓0.5, 0), unit = inter-ocular
distance):

- **a closed rim around each eye.** Around each eye centre the strongest closed, smooth contour
  of radial edges outside the eye (dynamic programming over angle, in a polar image) is the
  rim's inner outline; the frame runs from there to the next radial edge outward (its outer
  outline), or a thin band when there is none (a metal wire).
- **a bridge over the nose between the eyes**, which a bare face does not have: an edge across
  the nose strip between the eyes, well above that strip's own vertical shading.

A face counts as wearing glasses when both cues are strong (the rims' edges around most of the
loop, the bridge several times the strip's background; a very distinct bridge lets a thin wire's
weaker rims count); the mask fades in between the thresholds and its amount is returned with it.
Known limits: rimless glasses (no frame edge below the lenses) give only the upper part of the rim
if any; heavy reflections can break the loop; a thin wire on light skin is outlined only roughly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

#: canonical raster: pixels per inter-ocular distance, window x in [-W, W], y in [Y0, Y1]
_PPU = 64.0
_HALF_W, _Y0, _Y1 = 1.3, -0.85, 0.65
#: angles of the polar rim search
_N_ANGLES = 72
#: the rim search range around each eye centre (IOD): from the eye's outline + a margin outwards
_EYE_MARGIN, _R_MAX = 0.07, 0.62
#: thickness limits of the frame (IOD): the outer outline is looked for this far past the inner one
_RIM_MAX = 0.14
_RIM_MIN = 0.035
#: detection: (coverage of the rim loop by strong edges, bridge contrast), each (from, full)
_COVERAGE = (0.5, 0.62)
_BRIDGE = (1.5, 2.2)
#: a bridge this distinct (from, full) lowers the rims' coverage range by :data:`_THIN_COVERAGE`: a thin, light
#: metal wire on light skin gives radial edges around only 40-58 % of the loop (the woman of
#: ``assets/real/real_glasses_metal.mp4``, whose bridge reads 4.0-5.6), while no bare face's nose strip reads
#: above 1.8 (the real clips and the samples)
_STRONG_BRIDGE = (2.5, 3.5)
_THIN_COVERAGE = 0.2


def _coverage_range(bridge: float) -> tuple[float, float]:
    """The range of the rims' coverage over which a face with this bridge contrast counts as wearing glasses."""
    lower = _THIN_COVERAGE * _ramp(bridge, *_STRONG_BRIDGE)
    return _COVERAGE[0] - lower, _COVERAGE[1] - lower

EYE_R, EYE_L = list(range(36, 42)), list(range(42, 48))


def _to_px(p) -> np.ndarray:
    return (np.asarray(p, np.float64) + [_HALF_W, -_Y0]) * _PPU


def _polar(img: np.ndarray, centre, radius: int) -> np.ndarray:
    """``img`` around ``centre`` as ``[angles, radius]`` (angle from +x towards +y, radius in raster px)."""
    return cv2.warpPolar(img, (radius, _N_ANGLES), (float(centre[0]), float(centre[1])), radius,
                         cv2.WARP_POLAR_LINEAR | cv2.INTER_LINEAR)


def _best_loop(P: np.ndarray, lo: np.ndarray, hi: np.ndarray, step: int = 2) -> np.ndarray:
    """``int [angles]``: the radius per angle of the closed path through ``P`` ``[angles, R]`` with the
    largest sum, within ``lo..hi`` per angle and changing by at most ``step`` px between angles.

    Dynamic programming over two turns; the second turn (which no longer depends on where the
    first one started) is the loop."""
    n, R = P.shape
    r = np.arange(R)
    allowed = (r[None, :] >= lo[:, None]) & (r[None, :] < np.maximum(hi, lo + 1)[:, None])
    score = np.where(allowed, P, -1e9).astype(np.float32)
    total = score[0].copy()
    back = np.zeros((2 * n, R), np.int64)
    padded = np.full(R + 2 * step, -1e9, np.float32)
    # a view of ``padded``: row r holds total[r - step .. r + step] once total is copied in
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * step + 1)
    for a in range(1, 2 * n):
        padded[step:step + R] = total
        k = windows.argmax(1)
        back[a] = np.clip(r + k - step, 0, R - 1)  # (a radius nothing reaches points anywhere valid)
        total = windows[r, k] + score[a % n]
    path = np.zeros(2 * n, np.int64)
    path[-1] = int(np.argmax(total))
    for a in range(2 * n - 1, 0, -1):
        path[a - 1] = back[a, path[a]]
    loop = np.zeros(n, np.int64)
    loop[np.arange(n, 2 * n) % n] = path[n:]
    return loop


def _eye_radius(X: np.ndarray, idx, centre_x: float) -> np.ndarray:
    """The eye's outline as a radius (IOD) per polar angle around its centre (canonical points ``X``)."""
    p = X[idx] - [centre_x, 0.0]
    ang = np.arctan2(p[:, 1], p[:, 0])
    rad = np.hypot(p[:, 0], p[:, 1])
    order = np.argsort(ang)
    ang, rad = ang[order], rad[order]
    a = np.arange(_N_ANGLES) / _N_ANGLES * 2 * np.pi
    a = np.where(a > np.pi, a - 2 * np.pi, a)
    return np.interp(a, np.r_[ang - 2 * np.pi, ang, ang + 2 * np.pi], np.r_[rad, rad, rad])


@dataclass
class Glasses:
    """A glasses frame found on one face.

    - ``amount``: how surely the face wears glasses (0..1; the mask is scaled by it).
    - ``mask``: ``float32 [h, w]`` on the canonical raster, 1 on the frame (None when ``amount`` is 0).
    - ``to_raster``: affine ``[2, 3]`` frame px → raster px.
    - ``points``: ``[K, 2]`` frame px on the frame's outlines (rims, bridge, hinges), for the warp to pin.
    """

    amount: float
    mask: Optional[np.ndarray]
    to_raster: np.ndarray
    points: np.ndarray


def find_glasses(frame: np.ndarray, landmarks: np.ndarray, to_canonical: np.ndarray) -> Glasses:
    """The glasses frame on the face with ``landmarks`` ``[68, 2]`` (frame px) in ``frame`` (RGB), if any."""
    from ..geometry import apply

    from .occlusion import _canonical_raster

    A, (w, h) = _canonical_raster(to_canonical, _PPU, _HALF_W, _Y0, _Y1)
    canon = cv2.warpAffine(frame, A, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    gray = cv2.GaussianBlur(cv2.cvtColor(canon, cv2.COLOR_RGB2GRAY).astype(np.float32), (3, 3), 0)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)

    # the bridge: the strongest horizontal edge across the nose strip between the eyes
    strip_x = slice(int(_to_px((-0.07, 0))[0]), int(_to_px((0.07, 0))[0]))
    strip_y = slice(int(_to_px((0, -0.4))[1]), int(_to_px((0, 0.1))[1]))
    ay = np.abs(gy[strip_y])
    profile = ay[:, strip_x].mean(1)
    bridge = float(profile.max() / (np.median(ay) + 1.0))
    bridge_y = (strip_y.start + int(np.argmax(profile))) / _PPU + _Y0
    none = Glasses(0.0, None, A, np.zeros((0, 2), np.float32))
    if bridge <= _BRIDGE[0]:
        return none  # no bridge over the nose: no glasses (most faces stop here)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    X = apply(to_canonical, landmarks).astype(np.float64)

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    R = int(_R_MAX * _PPU)
    loops, coverage = [], []
    for idx, cx in ((EYE_R, -0.5), (EYE_L, 0.5)):
        c = _to_px((cx, 0.0))
        dx, dy = xx - c[0], yy - c[1]
        n = np.sqrt(dx * dx + dy * dy) + 1e-3
        radial = np.abs(gx * dx / n + gy * dy / n)
        P = _polar(radial, c, R)
        lo = np.clip(np.round((_eye_radius(X, idx, cx) + _EYE_MARGIN) * _PPU), 0, R - 2).astype(np.int64)
        inner = _best_loop(P, lo, np.full(_N_ANGLES, R, np.int64))
        on = P[np.arange(_N_ANGLES), inner]
        coverage.append(float((on > 3.0 * np.median(P)).mean()))
        # the frame's outer outline: the next strong radial edge outwards, if there is one
        lo2 = inner + int(_RIM_MIN * _PPU)
        hi2 = np.minimum(inner + int(_RIM_MAX * _PPU), R)
        outer = _best_loop(P, lo2, hi2, step=1)
        strong = P[np.arange(_N_ANGLES), np.minimum(outer, R - 1)] > 2.0 * np.median(P)
        outer = np.where(strong, outer, inner + int(_RIM_MIN * _PPU))
        loops.append((c, inner, outer))
    amount = _ramp(min(coverage), *_coverage_range(bridge)) * _ramp(bridge, *_BRIDGE)
    if amount <= 0.0:
        return none

    mask = np.zeros((h, w), np.uint8)
    ang = np.arange(_N_ANGLES) / _N_ANGLES * 2 * np.pi
    cos, sin = np.cos(ang), np.sin(ang)
    pad = 0.025 * _PPU
    pins = []
    for k, (c, inner, outer) in enumerate(loops):
        ri = np.maximum(inner - pad, 0)
        ro = outer + pad
        ring_out = np.stack([c[0] + ro * cos, c[1] + ro * sin], 1)
        ring_in = np.stack([c[0] + ri * cos, c[1] + ri * sin], 1)
        cv2.fillPoly(mask, [np.round(ring_out).astype(np.int32)], 1)
        cv2.fillPoly(mask, [np.round(ring_in).astype(np.int32)], 0)
        pins += [ring_out[::3], ring_in[::3]]
        # the hinge and the temple: from the rim's upper outer side towards the ear
        side = -1.0 if k == 0 else 1.0
        a = int(round((np.pi + 0.35 if k == 0 else -0.35) / (2 * np.pi) * _N_ANGLES)) % _N_ANGLES
        hx, hy = ring_out[a]
        x_end = hx + side * 0.3 * _PPU
        t0, t1 = hy - 0.05 * _PPU, hy + 0.07 * _PPU
        cv2.rectangle(mask, (int(min(hx, x_end)), int(t0)), (int(np.ceil(max(hx, x_end))), int(np.ceil(t1))), 1, -1)
        pins.append(np.array([[x_end, t0], [x_end, t1], [(hx + x_end) / 2, t0], [(hx + x_end) / 2, t1]]))
    # the bridge: a bar between the two rims' inner sides at the bridge's height
    (c_r, in_r, _), (c_l, in_l, _) = loops
    yb = _to_px((0.0, bridge_y))[1]
    xr = c_r[0] + in_r[0] - pad  # the right rim's inner side (angle 0 points at the nose)
    xl = c_l[0] - in_l[_N_ANGLES // 2] + pad  # the left rim's (angle pi)
    half = 0.05 * _PPU
    cv2.rectangle(mask, (int(xr), int(yb - half)), (int(np.ceil(xl)), int(np.ceil(yb + half))), 1, -1)
    pins.append(np.array([[x, y] for x in (xr, (xr + xl) / 2, xl) for y in (yb - half, yb + half)]))
    mask = _grow_to_outline(canon, mask, X)
    m = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.012 * _PPU)
    pts = np.vstack(pins).astype(np.float64)
    inv = cv2.invertAffineTransform(A)
    points = (pts @ inv[:, :2].T + inv[:, 2]).astype(np.float32)
    return Glasses(amount, np.clip(m * 1.2, 0, 1) * amount, A, points)


#: how far (IOD) past the rims' band the frame's own outline is looked for (a thick frame, a cat-eye's wings)
_GROW = 0.1


def _grow_to_outline(canon: np.ndarray, band: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``band`` ``uint8`` (1 on the rims) grown to the frame's own outline, at most :data:`_GROW` past it.

    A watershed on the colour image, seeded by the band's core on one side and, on the other, by
    the eyes and everything farther than :data:`_GROW` from the band: the boundary settles on the
    strongest edge between them, the frame's edge."""
    core = cv2.erode(band, np.ones((3, 3), np.uint8))
    far = cv2.distanceTransform((1 - band).astype(np.uint8), cv2.DIST_L2, 3) > _GROW * _PPU
    eyes = np.zeros_like(band)
    for idx in (EYE_R, EYE_L):
        cv2.fillPoly(eyes, [np.round(_to_px(X[idx])).astype(np.int32)], 1)
    markers = np.where(core > 0, 1, np.where(far | (eyes > 0), 2, 0)).astype(np.int32)
    img = cv2.GaussianBlur(canon, (0, 0), 1.0)
    cv2.watershed(np.ascontiguousarray(img[..., ::-1]), markers)
    return np.maximum(band, (markers == 1).astype(np.uint8))


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def glasses_mask(found: Glasses, roi: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, wide)`` ``float32 [h, w]`` over ``roi`` = (x0, y0, x1, y1) of the frame: 1 on the glasses
    frame, and the same feathered a little further (where the warp fades to zero beside it)."""
    from .occlusion import _to_roi

    x0, y0, x1, y1 = roi
    M = found.to_raster.copy()
    M[:, 2] = M[:, 2] + M[:, :2] @ np.array([x0, y0], np.float64)  # ROI px → raster px
    wide = np.maximum(np.clip(cv2.GaussianBlur(found.mask, (0, 0), 0.04 * _PPU) * 1.6, 0, 1) * found.amount,
                      found.mask)
    return _to_roi(found.mask, M, x1 - x0, y1 - y0), _to_roi(wide, M, x1 - x0, y1 - y0)

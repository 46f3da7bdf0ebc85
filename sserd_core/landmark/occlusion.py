"""What covers the face: a hand, a microphone, hair — found so the edit can leave it alone.

The landmark backend warps skin. Something in front of the face (fingers over the mouth,
a microphone, a strand of hair) must not be bent along with the lips, so the renderer
fades its edit out wherever this module finds an occluder.

No segmentation network ships in a wheel this project may depend on, so the detector
uses two properties of a face that an occluder breaks:

- **mirror symmetry of the skin's structure.** In canonical face space (eye corners
  level, unit = inter-ocular distance) the left and right halves of a face carry the same
  kind of detail at mirrored places: a cheek is smooth on both sides, a lip edge is an
  edge on both sides. Fingers, a microphone or hair put strong edges on one side only.
  The fine structure (luminance minus its local mean, so shading and side light cancel)
  is compared with its mirror image; where one side has much more of it than the other,
  that side is covered.
- **the skin's own colour.** A chroma model of the face's skin (from the cheeks and the
  forehead of the same frame) flags pixels of another colour (a dark microphone, hair).

Both are looked at only where an occluder matters for the edit (the face inside the
jaw line and up to the brows). Neither fires on an occluder's smooth, skin-coloured part (a
fingernail resting on the cheek), so a sizeable detection is then grown to the occluder's own
outline (:func:`_grow_to_edges`). The result is a soft mask that is 1 where the face is
covered. Known limits: an occluder that covers both sides of the face symmetrically in
skin colour is not found; a strongly turned head makes the far side look less detailed
(the threshold leaves room for the yaw of a talking head).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

#: canonical-space raster: pixels per inter-ocular distance, and the window (x: -W..W, y: Y0..Y1)
_PPU = 40.0
_HALF_W, _Y0, _Y1 = 1.25, -0.75, 1.75


def _canonical_raster(T: np.ndarray, ppu: float = _PPU, half_w: float = _HALF_W, y0: float = _Y0,
                      y1: float = _Y1) -> tuple[np.ndarray, tuple[int, int]]:
    """Affine ``[2, 3]`` frame px → raster px of the canonical window (``ppu`` px per inter-ocular distance,
    x in [-``half_w``, ``half_w``], y in [``y0``, ``y1``]; this module's window by default), and the raster
    size (w, h)."""
    S = np.array([[ppu, 0, half_w * ppu], [0, ppu, -y0 * ppu]], np.float64)
    A = S[:, :2] @ T[:, :2].astype(np.float64)
    b = S[:, :2] @ T[:, 2].astype(np.float64) + S[:, 2]
    w, h = int(round(2 * half_w * ppu)), int(round((y1 - y0) * ppu))
    return np.hstack([A, b[:, None]]), (w, h)


def _structure(gray: np.ndarray) -> np.ndarray:
    """Fine detail energy: |luminance − its local mean| / local mean, smoothed (0..~1)."""
    g = gray.astype(np.float32) + 8.0
    local = cv2.GaussianBlur(g, (0, 0), 2.5)
    detail = np.abs(g - local) / local
    return cv2.GaussianBlur(detail, (0, 0), 3.0)


def occlusion_mask(frame: np.ndarray, landmarks: np.ndarray, to_canonical: np.ndarray,
                   roi: tuple[int, int, int, int], spread: bool = False):
    """Soft occlusion mask ``float32 [h, w]`` in 0..1 over ``roi`` = (x0, y0, x1, y1) of ``frame``.

    ``frame`` ``uint8 [H, W, 3]`` RGB; ``landmarks`` ``[68, 2]`` frame px; ``to_canonical``
    the face's ``[2, 3]`` frame → canonical transform. 1 = something covers the face there.
    With ``spread``: ``(mask, wide)``, ``wide`` the same mask feathered further out (for
    fading a warp smoothly to zero around the occluder).
    """
    from ..geometry import apply

    x0, y0, x1, y1 = roi
    A, (w, h) = _canonical_raster(to_canonical)
    canon = cv2.warpAffine(frame, A, (w, h), flags=cv2.INTER_AREA if _PPU < 1 else cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    ycc = cv2.cvtColor(canon, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    # where to look: inside the jaw line, from the brows down (canonical raster px)
    X = apply(to_canonical, landmarks).astype(np.float64)
    to_px = lambda p: np.round((np.asarray(p) + [_HALF_W, -_Y0]) * _PPU).astype(np.int32)  # noqa: E731
    outline = np.vstack([X[0:17], X[[26, 24, 19, 17]] + [0, -0.1]])
    region = np.zeros((h, w), np.uint8)
    cv2.fillPoly(region, [to_px(outline)], 1)
    # keep away from the outline, where a turned head shows background or hair on one side only
    k_out = int(0.45 * _PPU) | 1
    region = cv2.erode(region, _ellipse(k_out)).astype(bool)
    # eyes and brows: gaze and a turned head make them differ left to right on their own
    eyes = np.zeros((h, w), np.uint8)
    for idx in (list(range(36, 42)), list(range(42, 48))):
        cv2.fillPoly(eyes, [to_px(X[idx])], 1)
    for idx in (list(range(17, 22)), list(range(22, 27))):
        cv2.polylines(eyes, [to_px(X[idx])], False, 1, int(0.15 * _PPU))
    k_eye = int(0.25 * _PPU) | 1
    eyes = cv2.dilate(eyes, _ellipse(k_eye)).astype(bool)
    region &= ~eyes
    # 1. mirror asymmetry of the fine structure (the raster is symmetric about x = 0: column w/2)
    s = _structure(ycc[..., 0])
    s_m = s[:, ::-1]
    both = region & region[:, ::-1]
    excess = np.clip(s - s_m - 0.02, 0, None) / (s + s_m + 0.03)
    asym = np.where(both, excess, 0.0)
    # 2. colour unlike the face's skin (chroma distance from the cheeks' and forehead's median)
    skin_pts = [X[[1, 2, 31, 41]].mean(0), X[[15, 14, 35, 46]].mean(0), X[[19, 24, 27]].mean(0) + [0, -0.2]]
    samples = []
    for p in skin_pts:
        cx, cy = to_px(p)
        r = max(2, int(0.08 * _PPU))
        patch = ycc[max(0, cy - r):cy + r, max(0, cx - r):cx + r, 1:].reshape(-1, 2)
        if len(patch):
            samples.append(patch)
    colour = np.zeros((h, w), np.float32)
    if samples:
        skin = np.concatenate(samples)
        mu = np.median(skin, 0)
        scale = np.maximum(np.percentile(np.abs(skin - mu), 90, axis=0), 3.0)
        dcr = (ycc[..., 1] - mu[0]) / scale[0]
        dcb = (ycc[..., 2] - mu[1]) / scale[1]
        dist = np.sqrt(dcr * dcr + dcb * dcb)
        # lips, eyes and brows are not skin-coloured but belong to the face: exclude them
        features = np.zeros((h, w), np.uint8)
        for idx in (list(range(48, 60)), list(range(36, 42)), list(range(42, 48))):
            cv2.fillPoly(features, [to_px(X[idx])], 1)
        for idx in (list(range(17, 22)), list(range(22, 27))):
            cv2.polylines(features, [to_px(X[idx])], False, 1, int(0.12 * _PPU))
        features = cv2.dilate(features, np.ones((7, 7), np.uint8)).astype(bool)
        off = np.where(region & ~features, np.clip((dist - 3.0) / 3.0, 0, 1), 0.0).astype(np.float32)
        # only where the mirrored place is skin-coloured: a beard or make-up is on both sides
        colour = np.clip(off - off[:, ::-1], 0, 1)
    occ = np.maximum(np.clip((asym - 0.25) / 0.25, 0, 1), colour).astype(np.float32)
    roi_w, roi_h = x1 - x0, y1 - y0
    if not occ.any():
        # nothing covers the face (most frames): closing, feathering and warping zeros give zeros
        zero = np.zeros((roi_h, roi_w), np.float32)
        return zero if not spread else (zero, np.zeros((roi_h, roi_w), np.float32))
    # close small gaps (between fingers' edges), then feather
    occ = cv2.morphologyEx(occ, cv2.MORPH_CLOSE, _ellipse(int(0.2 * _PPU) | 1))
    occ = _grow_to_edges(canon, occ, _GROW * _PPU, _GROW_FROM * _PPU ** 2)
    occ = cv2.GaussianBlur(occ, (0, 0), 0.06 * _PPU)
    occ = np.clip(occ * 1.5, 0, 1)
    # back to the frame ROI; with ``spread``, also a version feathered over ~0.15 IOD more
    M = A.copy()
    M[:, 2] = A[:, 2] + A[:, :2] @ np.array([x0, y0], np.float64)  # ROI px → raster px
    maps = [occ] if not spread else [occ, np.clip(cv2.GaussianBlur(occ, (0, 0), 0.15 * _PPU) * 1.5, 0, 1)]
    out = [_to_roi(m, M, roi_w, roi_h) for m in maps]
    return out[0] if not spread else (out[0], out[1])


#: how far (IOD) past the detected occluder its outline is looked for
_GROW = 0.4
#: the smallest detection (IOD²) that is grown to its outline
_GROW_FROM = 0.09


def _grow_to_edges(canon: np.ndarray, occ: np.ndarray, band: float, min_area: float) -> np.ndarray:
    """``occ`` extended to the occluder's own outline, at most ``band`` raster px past it.

    The two cues find an occluder's textured or off-colour part (the fingers' edges, a dark
    microphone) but not its smooth, skin-coloured part: a fingertip resting on the cheek has
    neither, and the cheek raise of a smile stretched it. A watershed on the colour image,
    seeded with the detected occluder on one side and everything farther than ``band`` from it
    on the other, puts the boundary on the strongest edge in between: the occluder's outline
    (a finger's edge and its shadow). Only detections of at least ``min_area`` raster px seed
    it: the small, scattered ones on an uncovered face (stubble, the far cheek of a turned head)
    would flood the smooth skin around them up to the band.
    """
    core = occ > 0.5
    if not core.any():
        return occ
    _, lab, stats, _ = cv2.connectedComponentsWithStats(core.astype(np.uint8), connectivity=8)
    big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= min_area) + 1
    if len(big) == 0:
        return occ
    seed = np.isin(lab, big)
    far = cv2.distanceTransform((~seed).astype(np.uint8), cv2.DIST_L2, 3) > band
    markers = np.where(seed, 1, np.where(far | (core & ~seed), 2, 0)).astype(np.int32)
    img = cv2.GaussianBlur(canon, (0, 0), 1.0)
    cv2.watershed(np.ascontiguousarray(img[..., ::-1]), markers)
    return np.maximum(occ, (markers == 1).astype(np.float32))


@functools.lru_cache(maxsize=None)
def _ellipse(k: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def _to_roi(m: np.ndarray, M: np.ndarray, w: int, h: int) -> np.ndarray:
    """Raster mask ``m`` resampled (bilinear) onto the ``w`` x ``h`` ROI; ``M``: ROI px → raster px.

    Only the part of the ROI where ``m`` is non-zero is computed (the rest is 0, as a full warp
    would give). Where the ROI is much finer than the raster (a close-up: several ROI pixels per
    raster pixel), the warp is sampled every ``step`` ROI pixels, at most half a raster pixel
    apart, and upsampled bilinearly: the masks are blurred over several raster pixels, so this
    differs from the direct warp by well under 1 % of the mask's range.
    """
    out = np.zeros((h, w), np.float32)
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    if len(rows) == 0:
        return out
    step = max(1, int(0.5 / np.sqrt(abs(np.linalg.det(M[:, :2])))))
    # the raster box holding the support (one pixel more: bilinear reads a neighbour), mapped to the ROI
    rx0, rx1, ry0, ry1 = cols[0] - 1, cols[-1] + 1, rows[0] - 1, rows[-1] + 1
    inv = cv2.invertAffineTransform(M)
    corners = np.array([[rx0, ry0, 1], [rx1, ry0, 1], [rx0, ry1, 1], [rx1, ry1, 1]], np.float64) @ inv.T
    bx0, by0 = np.maximum(np.floor(corners.min(0)).astype(int) - step, 0)
    bx1, by1 = np.minimum(np.ceil(corners.max(0)).astype(int) + step + 1, [w, h])
    if bx1 <= bx0 or by1 <= by0:
        return out
    bw, bh = int(bx1 - bx0), int(by1 - by0)
    # coarse pixel (i, j) sits at ROI px (bx0 + step i + (step - 1) / 2, ...): where cv2.resize puts it
    off = (step - 1) / 2.0
    Mb = M.copy()
    Mb[:, :2] = M[:, :2] * step
    Mb[:, 2] = M[:, 2] + M[:, :2] @ np.array([bx0 + off, by0 + off], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    src = np.ascontiguousarray(m, np.float32)
    if step == 1:
        cv2.warpAffine(src, Mb, (bw, bh), dst=out[by0:by1, bx0:bx1], flags=flags,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        return out
    cw, ch = -(-bw // step), -(-bh // step)
    coarse = cv2.warpAffine(src, Mb, (cw, ch), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    out[by0:by1, bx0:bx1] = cv2.resize(coarse, (cw * step, ch * step), interpolation=cv2.INTER_LINEAR)[:bh, :bw]
    return out

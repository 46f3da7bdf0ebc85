"""Paste an edited face crop back into the full frame.

Shared by both backends: feathered mask → colour matching → blending restricted to the
face's bounding region. Generated pixels (the neural backend) get a multi-band (Laplacian
pyramid) blend so no seam shows between two different images; pixels that were only moved
(the landmark warp, whose flow is zero where the mask ends) already meet the source at the
mask's edge, so a feathered composite gives the same picture at a fraction of the cost.
Pixels where the mask is zero are copied from the source frame, so everything outside the
face region stays bit-identical to the input.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .media.patch import Patch


def feather_mask(hull_points: np.ndarray, shape: tuple[int, int], grow: float = 0.0, feather: float = 0.08) -> np.ndarray:
    """A soft face mask ``float32 [h, w]`` in 0..1 from a polygon (pixels) of the face outline.

    The polygon's convex hull is grown by ``grow`` × its size, then blurred by
    ``feather`` × its size, so the mask falls from 1 to 0 over a band instead of a hard edge.
    """
    h, w = shape
    hull = cv2.convexHull(hull_points.astype(np.float32)).reshape(-1, 2)
    size = float(np.linalg.norm(hull.max(0) - hull.min(0)))
    if grow:
        c = hull.mean(0)
        hull = c + (hull - c) * (1.0 + grow)
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1.0, lineType=cv2.LINE_AA)
    k = max(3, int(round(size * feather)) | 1)
    # shrink first so that the blurred mask still reaches 0 at the polygon's edge
    erode = max(1, k // 2)
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (erode, erode)))
    return cv2.GaussianBlur(mask, (k, k), 0)


def match_colour(edited: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift ``edited``'s per-channel mean/std (in Lab) to ``source``'s, over the mask's face region.

    Both ``float32 [h, w, 3]`` RGB 0..255; ``mask`` ``[h, w]`` in 0..1. A generated face
    (neural backend) gets the scene's lighting; a warped face (landmark backend) is
    already matched and comes out unchanged up to rounding.
    """
    m = mask > 0.5
    if m.sum() < 16:
        return edited
    e_lab = cv2.cvtColor(np.clip(edited, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    s_lab = cv2.cvtColor(np.clip(source, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    e_mu, e_sd = e_lab[m].mean(0), e_lab[m].std(0) + 1e-3
    s_mu, s_sd = s_lab[m].mean(0), s_lab[m].std(0) + 1e-3
    if np.all(np.abs(e_mu - s_mu) < 0.5) and np.all(np.abs(e_sd / s_sd - 1) < 0.02):
        return edited  # already matched: leave the pixels alone
    ratio = np.clip(s_sd / e_sd, 0.5, 2.0)
    out = (e_lab - e_mu) * ratio + s_mu
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)


def laplacian_blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray, levels: int = 4) -> np.ndarray:
    """Multi-band blend: ``mask`` × ``a`` + (1 − ``mask``) × ``b`` per Laplacian-pyramid band.

    ``a``, ``b`` ``float32 [h, w, 3]``; ``mask`` ``float32 [h, w]``. Low frequencies blend
    over a wide band, fine detail over a narrow one, so no seam shows.
    """
    h, w = mask.shape
    levels = max(1, min(levels, int(np.log2(max(2, min(h, w)))) - 2))
    ga, gb, gm = [a], [b], [mask[..., None]]
    for _ in range(levels):
        ga.append(cv2.pyrDown(ga[-1]))
        gb.append(cv2.pyrDown(gb[-1]))
        gm.append(cv2.pyrDown(gm[-1])[..., None] if gm[-1].ndim == 3 else cv2.pyrDown(gm[-1]))
    gm = [g if g.ndim == 3 else g[..., None] for g in gm]
    out = ga[-1] * gm[-1] + gb[-1] * (1 - gm[-1])
    for i in range(levels - 1, -1, -1):
        size = (ga[i].shape[1], ga[i].shape[0])
        la = ga[i] - cv2.pyrUp(ga[i + 1], dstsize=size)
        lb = gb[i] - cv2.pyrUp(gb[i + 1], dstsize=size)
        out = cv2.pyrUp(out, dstsize=size) + la * gm[i] + lb * (1 - gm[i])
    return out


def paste_back(frame: np.ndarray, edited_crop: np.ndarray, crop_to_frame: np.ndarray, crop_mask: np.ndarray,
               colour_match: bool = True, levels: int = 4, multiband: Optional[bool] = None) -> np.ndarray:
    """Blend an edited face crop into ``frame``; return a new frame (see :func:`paste_back_patch`)."""
    patch = paste_back_patch(frame, edited_crop, crop_to_frame, crop_mask, colour_match, levels, multiband)
    return frame.copy() if patch.pixels is None else patch.apply()


def paste_back_patch(frame: np.ndarray, edited_crop: np.ndarray, crop_to_frame: np.ndarray, crop_mask: np.ndarray,
                     colour_match: bool = True, levels: int = 4, multiband: Optional[bool] = None) -> Patch:
    """Blend an edited face crop into ``frame``; return the blended box as a :class:`~sserd_core.media.Patch`
    over ``frame`` (no copy of the rest of the frame is made).

    - ``frame``: ``uint8 [H, W, 3]`` source frame (not modified).
    - ``edited_crop``: ``uint8 [h, w, 3]`` the edited face in crop coordinates.
    - ``crop_to_frame``: ``float [2, 3]`` affine map crop px → frame px (a pure
      translation for an axis-aligned crop; a similarity for an aligned crop).
    - ``crop_mask``: ``float32 [h, w]`` 0..1, 1 where the edited face should replace the frame.

    - ``multiband``: Laplacian-pyramid blend (``levels`` bands) or a feathered composite; default:
      multi-band for generated pixels (``colour_match``), feathered for moved ones.

    Work happens inside the bounding box of the mapped mask; outside it, and wherever the
    mapped mask is exactly 0, the result is bit-identical to ``frame``.
    """
    multiband = colour_match if multiband is None else multiband
    H, W = frame.shape[:2]
    h, w = crop_mask.shape
    A = np.asarray(crop_to_frame, np.float64)
    is_translation = np.allclose(A[:, :2], np.eye(2)) and np.allclose(A[:, 2], np.round(A[:, 2]))
    if is_translation:
        # an axis-aligned crop: views of it, no resampling, no padded copies
        tx, ty = int(round(A[0, 2])), int(round(A[1, 2]))
        sx0, sy0 = max(0, -tx), max(0, -ty)  # the part of the crop inside the frame
        sx1, sy1 = min(w, W - tx), min(h, H - ty)
        if sx1 <= sx0 or sy1 <= sy0:
            return Patch(frame)
        # only the mask's bounding box needs blending; the rest stays the source's
        bx0, by0, bw, bh = cv2.boundingRect((crop_mask[sy0:sy1, sx0:sx1] > 0).view(np.uint8))
        if bw == 0 or bh == 0:
            return Patch(frame)
        sx0, sy0 = sx0 + bx0, sy0 + by0
        mask = crop_mask[sy0:sy0 + bh, sx0:sx0 + bw]
        edited = edited_crop[sy0:sy0 + bh, sx0:sx0 + bw]
        x0, y0 = tx + sx0, ty + sy0
        x1, y1 = x0 + bw, y0 + bh
    else:
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ A.T
        x0, y0 = np.floor(corners.min(0)).astype(int) - 2
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return Patch(frame)
        # map crop → ROI of the frame
        T = A.copy()
        T[:, 2] -= (x0, y0)
        roi_w, roi_h = x1 - x0, y1 - y0
        edited = cv2.warpAffine(edited_crop.astype(np.float32), T, (roi_w, roi_h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(crop_mask.astype(np.float32), T, (roi_w, roi_h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        # only the mask's bounding box needs blending; the rest of the ROI stays the source's
        bx0, by0, bw, bh = cv2.boundingRect((mask > 0).view(np.uint8))
        if bw == 0 or bh == 0:
            return Patch(frame)
        mask = mask[by0:by0 + bh, bx0:bx0 + bw]
        edited = edited[by0:by0 + bh, bx0:bx0 + bw]
        y0, x0 = y0 + by0, x0 + bx0
        y1, x1 = y0 + bh, x0 + bw
    if not multiband and not colour_match:
        # feathered composite in uint8 (cv2.blendLinear: w·edited + (1 − w)·source per pixel)
        src8 = frame[y0:y1, x0:x1]
        ed8 = edited if edited.dtype == np.uint8 else np.clip(np.round(edited), 0, 255).astype(np.uint8)
        mask = np.ascontiguousarray(mask, np.float32)
        blended = cv2.blendLinear(np.ascontiguousarray(ed8), np.ascontiguousarray(src8), mask, 1.0 - mask)
        # exactly the source where the mask is 0 (blendLinear gives that already; a guarantee, cheap)
        blended = cv2.copyTo(src8, (mask <= 0).view(np.uint8), blended)
        return Patch(frame, blended, int(x0), int(y0))
    src = frame[y0:y1, x0:x1].astype(np.float32)
    if colour_match:
        edited = match_colour(edited, src, mask)
    edited = edited.astype(np.float32)
    blended = laplacian_blend(edited, src, mask, levels=levels) if multiband else edited * mask[..., None] + src * (1 - mask[..., None])
    roi = frame[y0:y1, x0:x1].copy()
    keep = mask > 0
    roi[keep] = np.clip(np.round(blended[keep]), 0, 255).astype(np.uint8)
    return Patch(frame, roi, int(x0), int(y0))

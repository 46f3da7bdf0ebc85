"""The landmark backend: dense warp of the face region from source to edited landmarks.

For each frame: target landmarks = source landmarks + the emotion displacement
(target emotion − the emotion the source shows), mapped from canonical space to the
frame. A thin-plate spline through the moved emotion points, the pinned content points
(jaw, inner-lip centres, nose bridge) and a fixed ring around the face gives a smooth
backward flow; ``torch.nn.functional.grid_sample`` resamples the face region with it, and
:func:`sserd_core.blend.paste_back` blends the result into the frame. The flow is zero on
the ring, so the warp fades out before the blend mask does, and the warp depends only
on smoothed landmarks and a slowly varying emotion, so it is stable over time.
"""

from __future__ import annotations

import contextlib
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import expression
from .blend import feather_mask, paste_back
from .editor import FaceEditor, FaceFrame

_RING_POINTS = 20


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
    sol = np.linalg.solve(A, b)
    return sol[:n], sol[n:], src


def tps_eval(params, pts: np.ndarray) -> np.ndarray:
    """Evaluate a fitted spline at ``pts`` ``[m, 2]`` (float32 inside: the flow needs no more)."""
    w, a, centres = (np.asarray(x, np.float32) for x in params)
    pts = np.asarray(pts, np.float32)
    d2 = (pts * pts).sum(1)[:, None] + (centres * centres).sum(1)[None, :] - 2.0 * pts @ centres.T
    np.maximum(d2, 1e-12, out=d2)
    return _tps_kernel(d2) @ w + a[0] + pts @ a[1:]


def face_ring(landmarks: np.ndarray, scale: float = 1.45, n: int = _RING_POINTS) -> np.ndarray:
    """Fixed points ``[n, 2]`` on an ellipse around the face (brows to chin, plus forehead room)."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    c = (lo + hi) / 2
    c = c - np.array([0.0, 0.12 * (hi[1] - lo[1])])  # room above the brows
    rx, ry = (hi[0] - lo[0]) / 2 * scale, (hi[1] - lo[1]) / 2 * scale * 1.15
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([c[0] + rx * np.cos(a), c[1] + ry * np.sin(a)], 1).astype(np.float32)


def target_landmarks(face: FaceFrame, target: np.ndarray) -> np.ndarray:
    """Edited landmarks ``[68, 2]`` (frame px): source + displacement(target − source emotion); content pinned."""
    delta = expression.emotion_displacement(target) - expression.emotion_displacement(face.source_emotion)
    delta[expression.CONTENT_POINTS] = 0.0
    return face.landmarks + expression.displacement_to_frame(face.to_canonical, delta)


class LandmarkEditor(FaceEditor):
    """The embedded default backend: landmark-driven dense warp (CPU or GPU, no network weights).

    ``grid_step``: the spline is evaluated every ``grid_step`` pixels and upsampled
    (the flow is smooth, so this loses nothing visible and saves time).
    """

    name = "landmark"

    def __init__(self, device: Optional[str] = None, grid_step: int = 6, interpolation: str = "bicubic"):
        self.device = torch.device(device) if device else torch.device("cpu")
        self.grid_step = max(1, int(grid_step))
        self.interpolation = interpolation

    def edit(self, frames: Sequence[np.ndarray], faces: Sequence[Optional[FaceFrame]],
             targets: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.edit_one(f, face, t) for f, face, t in zip(frames, faces, targets)]

    def target_landmarks(self, face: FaceFrame, target: np.ndarray) -> np.ndarray:
        """Edited landmarks ``[68, 2]`` (frame px) for one frame; a subclass may change what moves
        (the evaluation's naive baseline moves the mouth too)."""
        return target_landmarks(face, target)

    def edit_one(self, frame: np.ndarray, face: Optional[FaceFrame], target: np.ndarray) -> np.ndarray:
        if face is None:
            return frame
        src_lm = face.landmarks.astype(np.float64)
        dst_lm = self.target_landmarks(face, target).astype(np.float64)
        if np.abs(dst_lm - src_lm).max() < 0.05:
            return frame  # nothing to change (e.g. neutral → neutral)
        H, W = frame.shape[:2]
        ring = face_ring(face.landmarks).astype(np.float64)
        lo = np.floor(np.maximum(ring.min(0), 0)).astype(int)
        hi = np.ceil(np.minimum(ring.max(0), [W - 1, H - 1])).astype(int) + 1
        (x0, y0), (x1, y1) = lo, hi
        if x1 - x0 < 8 or y1 - y0 < 8:
            return frame
        # backward map: for each output (edited) position, where to sample in the source
        ctrl_dst = np.vstack([dst_lm, ring])
        ctrl_src = np.vstack([src_lm, ring])
        scale = float(np.linalg.norm(ring.max(0) - ring.min(0)))
        params = tps_fit(ctrl_dst / scale, ctrl_src / scale)
        h, w = y1 - y0, x1 - x0
        gs = self.grid_step
        gy, gx = np.mgrid[0:h + gs:gs, 0:w + gs:gs].astype(np.float64)
        pts = np.stack([gx.ravel() + x0, gy.ravel() + y0], 1)
        src_pts = tps_eval(params, pts / scale) * scale
        coarse = torch.from_numpy(src_pts.reshape(gy.shape[0], gy.shape[1], 2).astype(np.float32)).permute(2, 0, 1)[None]
        # upsample the coarse map to full ROI resolution (align_corners so grid nodes land on pixels)
        full_h, full_w = (gy.shape[0] - 1) * gs + 1, (gy.shape[1] - 1) * gs + 1
        flow = F.interpolate(coarse, size=(full_h, full_w), mode="bilinear", align_corners=True)[0, :, :h, :w]
        # grid_sample wants sampling positions in [-1, 1] of the input frame region
        with _cpu_threads(1 if self.device.type == "cpu" else None):
            img = torch.from_numpy(np.ascontiguousarray(frame[y0:y1, x0:x1])).to(self.device)
            img = img.permute(2, 0, 1)[None].float()
            gx_n = (flow[0] - x0) / max(w - 1, 1) * 2 - 1
            gy_n = (flow[1] - y0) / max(h - 1, 1) * 2 - 1
            grid = torch.stack([gx_n, gy_n], -1)[None].to(self.device)
            warped = F.grid_sample(img, grid, mode=self.interpolation, padding_mode="border", align_corners=True)
            crop = warped[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).cpu().numpy()
        # blend mask: the face inside the ring, feathered, where the flow has decayed
        mask = feather_mask(ring - [x0, y0], (h, w), grow=-0.12, feather=0.12)
        crop_to_frame = np.array([[1, 0, x0], [0, 1, y0]], np.float64)
        # the warp moves the source's own pixels, so their colours already match the frame:
        # colour matching (for generated pixels, the neural backend) is skipped here
        return paste_back(frame, crop, crop_to_frame, mask, colour_match=False)


@contextlib.contextmanager
def _cpu_threads(n: Optional[int]):
    """Run small CPU tensor ops on ``n`` threads (more threads only add overhead on a face-sized crop)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if old != n:
            torch.set_num_threads(old)

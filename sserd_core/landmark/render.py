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
from typing import Optional, Sequence

import cv2
import numpy as np

from . import expression
from ..blend import paste_back
from ..editor import FaceEditor, FaceFrame
from .occlusion import occlusion_mask
from .shading import fold_amounts, shading_gain

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


def _emotion_delta(face: FaceFrame, target: np.ndarray) -> np.ndarray:
    """Canonical displacement ``[N_CONTROL, 2]`` of target − source emotion, content points pinned."""
    delta = expression.edit_displacement(target, face.source_emotion)
    delta[expression.CONTENT_POINTS] = 0.0
    return delta


def target_landmarks(face: FaceFrame, target: np.ndarray) -> np.ndarray:
    """Edited landmarks ``[68, 2]`` (frame px): source + displacement(target − source emotion); content pinned."""
    delta = _emotion_delta(face, target)[:68]
    return face.landmarks + expression.displacement_to_frame(face.to_canonical, delta)


def target_skin_points(face: FaceFrame, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(source, edited) skin points ``[K, 2]`` (frame px), see :data:`sserd_core.landmark.expression.SKIN_POINTS`."""
    src = expression.control_points(face.landmarks)[68:]
    delta = _emotion_delta(face, target)[68:]
    return src, src + expression.displacement_to_frame(face.to_canonical, delta)


class LandmarkEditor(FaceEditor):
    """The embedded default backend: landmark-driven dense warp (CPU or GPU, no network weights).

    ``grid_step``: the spline is evaluated every ``grid_step`` pixels and upsampled
    (the flow is smooth, so this loses nothing visible and saves time).
    """

    name = "landmark"
    parallel_safe = True  # every frame is edited from its own inputs only

    def __init__(self, device: Optional[str] = None, grid_step: int = 8, interpolation: str = "bicubic",
                 backend: str = "auto", shading: bool = True, occlusion: bool = True):
        self.shading = shading
        self.occlusion = occlusion
        self.device = _device(device)
        self.grid_step = max(1, int(grid_step))
        self.interpolation = interpolation
        self.backend = backend  # "auto": cv2.remap on CPU, grid_sample on GPU; "torch": grid_sample everywhere

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
        src_skin, dst_skin = target_skin_points(face, target)
        src_lm = np.vstack([face.landmarks, src_skin]).astype(np.float64)
        dst_lm = np.vstack([self.target_landmarks(face, target), dst_skin]).astype(np.float64)
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
        src_pts = (tps_eval(params, pts / scale) * scale).astype(np.float32)
        # upsample the coarse map to full ROI resolution (grid nodes land on pixels 0, gs, 2gs, ...)
        full_w, full_h = (gy.shape[1] - 1) * gs + 1, (gy.shape[0] - 1) * gs + 1
        map_x = cv2.resize(src_pts[:, 0].reshape(gy.shape), (full_w, full_h), interpolation=cv2.INTER_LINEAR)[:h, :w]
        map_y = cv2.resize(src_pts[:, 1].reshape(gy.shape), (full_w, full_h), interpolation=cv2.INTER_LINEAR)[:h, :w]
        occluded = None
        if self.occlusion:
            occluded, around = occlusion_mask(frame, face.landmarks, face.to_canonical, (x0, y0, x1, y1), spread=True)
        box = _nonzero_box(around, 0.01) if occluded is not None else None
        if box is not None:
            # whatever covers the face is not skin: no flow under it (and smoothly less around it)
            by0, by1, bx0, bx1 = box
            keep = 1.0 - around[by0:by1, bx0:bx1]
            gx = np.arange(bx0, bx1, dtype=np.float32)[None, :] + x0
            gy = np.arange(by0, by1, dtype=np.float32)[:, None] + y0
            map_x[by0:by1, bx0:bx1] = gx + (map_x[by0:by1, bx0:bx1] - gx) * keep
            map_y[by0:by1, bx0:bx1] = gy + (map_y[by0:by1, bx0:bx1] - gy) * keep
        crop = self._warp(frame, x0, y0, w, h, map_x, map_y)
        if self.shading:
            iod = 1.0 / max(float(np.sqrt(abs(np.linalg.det(face.to_canonical[:, :2])))), 1e-6)
            gain = shading_gain((h, w), dst_lm - [x0, y0], iod,
                                fold_amounts(np.asarray(target), np.asarray(face.source_emotion)), crop)
            if gain is not None:
                (g, (gx0, gy0)) = gain
                part = crop[gy0:gy0 + g.shape[0], gx0:gx0 + g.shape[1]]
                part[...] = cv2.multiply(part, cv2.merge([g] * 3), dtype=cv2.CV_8U)
        # blend mask: an ellipse inside the fixed ring (where the flow has decayed), feathered
        mask = ellipse_mask((h, w), ring - [x0, y0], shrink=0.86, feather=0.18)
        box = _nonzero_box(occluded, 0.0) if occluded is not None else None
        if box is not None:
            by0, by1, bx0, bx1 = box
            mask[by0:by1, bx0:bx1] *= 1.0 - occluded[by0:by1, bx0:bx1]
        crop_to_frame = np.array([[1, 0, x0], [0, 1, y0]], np.float64)
        # the warp moves the source's own pixels, so their colours already match the frame:
        # colour matching (for generated pixels, the neural backend) is skipped here
        return paste_back(frame, crop, crop_to_frame, mask, colour_match=False, levels=3)

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
    c = ring.mean(0)
    rx = (ring[:, 0].max() - ring[:, 0].min()) / 2 * shrink
    ry = (ring[:, 1].max() - ring[:, 1].min()) / 2 * shrink
    yy, xx = np.ogrid[0:h, 0:w]
    r = np.sqrt(((xx - c[0]) / rx) ** 2 + ((yy - c[1]) / ry) ** 2).astype(np.float32)
    t = np.clip((1.0 - r) / feather, 0.0, 1.0)
    return t * t * (3 - 2 * t)  # smoothstep


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

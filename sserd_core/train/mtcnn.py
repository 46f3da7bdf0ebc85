"""The official SSERD face detection (``preprocessing/detect.py``): MTCNN boxes, median-smoothed over time,
squared, widened by a margin and cut to 256 px — written here as a small MTCNN that loads the P/R/O-Net weights
bundled in the ``facenet-pytorch`` wheel.

``facenet-pytorch`` itself cannot be installed beside a current torch (2.6.0 pins ``torch<2.3``, ``numpy<2``;
2.5.3 needs ``torchvision``), so it is **not imported**: install only its files with
``pip install --no-deps facenet-pytorch`` and :func:`weights_dir` finds ``facenet_pytorch/data/{pnet,rnet,onet}.pt``
without running the package. The networks (Zhang et al. 2016, the layer layout of those files) and the
three-stage cascade (image pyramid, P-Net proposals, R-Net and O-Net refinement, box regression, NMS) are
implemented below with torch and numpy only; defaults are facenet-pytorch's (minimum face 20 px, thresholds
0.6 / 0.7 / 0.7, pyramid factor 0.709).

:func:`official_boxes` reproduces ``detect.py``'s temporal smoothing (a median filter of window 49 over each
box coordinate, ``mode='reflect'``, missing detections filled from neighbours) and squaring; :func:`crop_box`
its ``extract_face(img, box, 256, margin=70)`` crop rectangle.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import SSERDError

MARGIN, CROP_SIZE, WINDOW = 70, 256, 49


def weights_dir() -> Path:
    """Folder holding ``pnet.pt``, ``rnet.pt``, ``onet.pt``: ``$SSERD_MTCNN_DIR``, or the installed
    ``facenet_pytorch`` package's ``data`` folder (found without importing the package)."""
    env = os.environ.get("SSERD_MTCNN_DIR")
    if env:
        d = Path(env)
    else:
        spec = importlib.util.find_spec("facenet_pytorch")
        if spec is None or not spec.submodule_search_locations:
            raise SSERDError("The MTCNN detector needs the P/R/O-Net weights bundled in facenet-pytorch: "
                             "pip install --no-deps facenet-pytorch (or set SSERD_MTCNN_DIR to a folder with "
                             "pnet.pt, rnet.pt, onet.pt).")
        d = Path(list(spec.submodule_search_locations)[0]) / "data"
    missing = [n for n in ("pnet.pt", "rnet.pt", "onet.pt") if not (d / n).is_file()]
    if missing:
        raise SSERDError(f"{d} lacks {', '.join(missing)}; reinstall with pip install --no-deps facenet-pytorch.")
    return d


def _nets():
    import torch
    import torch.nn as nn

    class Head(nn.Module):
        """conv/PReLU/pool trunk + dense heads; ``dense`` layers read the trunk transposed (the weights were
        converted from Caffe/TF: the flattening order is W, H, C)."""

    class PNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
            self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
            self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
            return self.conv4_2(x), torch.softmax(self.conv4_1(x), 1)

    class RNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
            self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
            self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).flatten(1)
            x = self.prelu4(self.dense4(x))
            return self.dense5_2(x), torch.softmax(self.dense5_1(x), 1)

    class ONet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).flatten(1)
            x = self.prelu5(self.dense5(x))
            return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), 1)

    return PNet, RNet, ONet


class MTCNN:
    """Face boxes with MTCNN. ``MTCNN(weights=None)`` loads :func:`weights_dir`; ``weights`` may also be a dict
    ``{"pnet": state_dict, "rnet": ..., "onet": ...}`` (the tests pass random ones with the same layout)."""

    def __init__(self, weights=None, min_face: int = 20, thresholds=(0.6, 0.7, 0.7), factor: float = 0.709,
                 device: str = "cpu"):
        import torch

        PNet, RNet, ONet = _nets()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        if weights is None:
            d = weights_dir()
            weights = {n: torch.load(d / f"{n}.pt", map_location="cpu", weights_only=True)
                       for n in ("pnet", "rnet", "onet")}
        for name in ("pnet", "rnet", "onet"):
            getattr(self, name).load_state_dict(weights[name], strict=True)
            getattr(self, name).eval().requires_grad_(False).to(device)
        self.min_face, self.thresholds, self.factor, self.device = min_face, thresholds, factor, device

    # -------------------------------------------------------------- the cascade
    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(boxes [K, 4] x1 y1 x2 y2, probabilities [K], five landmarks [K, 5, 2])`` of one RGB image,
        most probable first."""
        import torch

        with torch.inference_mode():
            return self._detect(rgb)

    def _detect(self, rgb):
        import torch
        import torch.nn.functional as F

        img = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float()
        h, w = rgb.shape[:2]
        m = 12.0 / self.min_face
        minl = min(h, w) * m
        scales, s = [], m
        while minl >= 12:
            scales.append(s)
            s *= self.factor
            minl *= self.factor
        found = []
        for scale in scales:
            im = F.interpolate(img, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            reg, prob = self.pnet((im - 127.5) * 0.0078125)
            score = prob[0, 1].cpu().numpy()
            ys, xs = np.nonzero(score >= self.thresholds[0])
            if not len(ys):
                continue
            q1 = np.floor((2 * np.stack([xs, ys], 1) + 1) / scale)
            q2 = np.floor((2 * np.stack([xs, ys], 1) + 12) / scale)
            r = reg[0].cpu().numpy()[:, ys, xs].T
            b = np.concatenate([q1, q2, score[ys, xs, None], r], 1)
            found.append(b[_nms(b[:, :4], b[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        b = np.concatenate(found)
        b = b[_nms(b[:, :4], b[:, 4], 0.7)]
        boxes = _square(_regress(b[:, :4], b[:, 5:9]))
        # R-Net
        reg, prob = self.rnet(self._patches(img, boxes, 24))
        p = prob[:, 1].cpu().numpy()
        keep = p > self.thresholds[1]
        boxes, p, reg = boxes[keep], p[keep], reg.cpu().numpy()[keep]
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        k = _nms(boxes, p, 0.7)
        boxes = _square(_regress(boxes[k], reg[k]))
        # O-Net
        reg, pts, prob = self.onet(self._patches(img, boxes, 48))
        p = prob[:, 1].cpu().numpy()
        keep = p > self.thresholds[2]
        boxes, p, reg, pts = boxes[keep], p[keep], reg.cpu().numpy()[keep], pts.cpu().numpy()[keep]
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        marks = np.stack([bw[:, None] * pts[:, :5] + boxes[:, :1] - 1, bh[:, None] * pts[:, 5:] + boxes[:, 1:2] - 1], -1)
        boxes = _regress(boxes, reg)
        k = _nms(boxes, p, 0.7, "min")
        order = k[np.argsort(-p[k])]
        return boxes[order], p[order], marks[order]

    def _patches(self, img, boxes: np.ndarray, size: int):
        import torch
        import torch.nn.functional as F

        h, w = img.shape[-2:]
        out = []
        for x1, y1, x2, y2 in boxes:
            x1i, y1i = int(max(np.trunc(x1), 1)), int(max(np.trunc(y1), 1))
            x2i, y2i = int(min(np.trunc(x2), w)), int(min(np.trunc(y2), h))
            patch = img[:, :, y1i - 1:max(y2i, y1i), x1i - 1:max(x2i, x1i)]
            out.append(F.interpolate(patch, size=(size, size), mode="area"))
        return (torch.cat(out) - 127.5) * 0.0078125


def _nms(boxes: np.ndarray, scores: np.ndarray, thresh: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (overlap: intersection over union, or over the smaller box)."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        xx1, yy1 = np.maximum(x1[i], x1[order[1:]]), np.maximum(y1[i], y1[order[1:]])
        xx2, yy2 = np.minimum(x2[i], x2[order[1:]]), np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        denom = np.minimum(area[i], area[order[1:]]) if mode == "min" else area[i] + area[order[1:]] - inter
        order = order[1:][inter / denom <= thresh]
    return np.asarray(keep, int)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    return boxes + reg * np.stack([w, h, w, h], 1)


def _square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1, y1 = boxes[:, 0] + w * 0.5 - side * 0.5, boxes[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], 1)


# ---------------------------------------------------------------- detect.py's smoothing and crop
def official_boxes(boxes: Sequence[Optional[np.ndarray]], window: int = WINDOW) -> np.ndarray:
    """``detect.py``'s ``smooth_boxes``: missing boxes filled (the first from the next found, others from the
    next found or the previous), each coordinate median-filtered over ``window`` frames (odd, at most the clip
    length, ``mode='reflect'``), then made square about the box's right/bottom edges as the official code does.
    ``boxes``: one ``[4]`` box or None per frame. Returns ``[N, 4]``."""
    from scipy import ndimage

    boxes = list(boxes)
    if not any(b is not None for b in boxes):
        raise SSERDError("MTCNN found no face in the clip.")
    for i in range(len(boxes)):
        if boxes[i] is None:
            nxt = next((b for b in boxes[i + 1:] if b is not None), None)
            boxes[i] = nxt if nxt is not None else boxes[i - 1]
    arr = np.asarray(boxes, np.float64)
    n = min(window, len(arr))
    n -= 1 - n % 2  # odd
    out = np.stack([ndimage.median_filter(arr[:, k], size=max(n, 1), mode="reflect") for k in range(4)], 1)
    w, h = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    dif = (h - w) / 2
    out[:, 0] = out[:, 2] - w - dif
    out[:, 2] = out[:, 2] + dif
    out[:, 1] = out[:, 3] - h
    return out


def crop_box(box: np.ndarray, width: int, height: int, size: int = CROP_SIZE, margin: int = MARGIN) -> tuple:
    """The frame rectangle ``(x0, y0, x1, y1)`` (ints) that ``extract_face(img, box, size, margin)`` cuts and
    resizes to ``size`` px: the box widened by ``margin`` px *of the output*, clipped to the image."""
    mx = margin * (box[2] - box[0]) / (size - margin)
    my = margin * (box[3] - box[1]) / (size - margin)
    return (int(max(box[0] - mx / 2, 0)), int(max(box[1] - my / 2, 0)),
            int(min(box[2] + mx / 2, width)), int(min(box[3] + my / 2, height)))


def landmarks_in_box(rgb: np.ndarray, box: np.ndarray, size: int = CROP_SIZE) -> Optional[np.ndarray]:
    """68 landmarks (frame px) found in the ``extract_face`` crop of ``box`` resized to ``size`` px (dlib here; the
    official code runs face-alignment's detector and FAN on that crop), mapped back to the frame; None if none."""
    import cv2

    from ..face import detect_landmarks

    x0, y0, x1, y1 = crop_box(box, rgb.shape[1], rgb.shape[0], size)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = cv2.resize(np.ascontiguousarray(rgb[y0:y1, x0:x1]), (size, size), interpolation=cv2.INTER_LINEAR)
    found = detect_landmarks(crop)
    if not found:
        return None
    sx, sy = (x1 - x0) / size, (y1 - y0) / size
    lm = found[0].astype(np.float64)
    return np.stack([(lm[:, 0] + 0.5) * sx - 0.5 + x0, (lm[:, 1] + 0.5) * sy - 0.5 + y0], 1)


def official_landmarks(frames_rgb: Sequence[np.ndarray], detector: Optional[MTCNN] = None,
                       size: int = CROP_SIZE) -> list[Optional[np.ndarray]]:
    """68 landmarks (frame px) per frame the official way: MTCNN boxes → :func:`official_boxes` →
    :func:`landmarks_in_box`. None where the crop shows no face."""
    det = detector or MTCNN()
    raw = []
    for rgb in frames_rgb:
        b, _, _ = det.detect(rgb)
        raw.append(b[0] if len(b) else None)
    return [landmarks_in_box(rgb, box, size) for rgb, box in zip(frames_rgb, official_boxes(raw))]

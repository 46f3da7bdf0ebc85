"""A second independent expression classifier, trained on other data than FER2013 (torch, CPU).

It is **face-api.js's FaceExpressionNet** as the npm package ``@vladmandic/face-api@1.7.15``
ships it (MIT, © 2018 Vincent Mühler; © Vladimir Mandic), re-implemented in torch from the
package's source (``src/faceFeatureExtractor``, ``src/faceExpressionNet``) and loaded from
``tests/data/faceapi_expression.safetensors``, which ``scripts/export_faceapi_classifier.py``
dequantised from ``model/face_expression_model.bin``. face-api.js's documentation says the model
"has been trained on a variety of images from publicly available datasets as well as images
scraped from the web" (the datasets are not named) and that "wearing glasses might decrease the
accuracy". The first classifier (``tests/expression_classifier.py``, fer's mini-Xception) was
trained on FER2013 alone, 64×64 grey; this one sees 112×112 colour.
``tests/test_faceapi_classifier.py`` checks the port against the probabilities the real
JavaScript gives (``tests/data/faceapi_reference_probs.json``, made by
``scripts/faceapi_reference.cjs`` in Node).

Network (face-api's ``FaceFeatureExtractor`` + ``FaceProcessor`` FC): RGB minus the mean
[122.782, 117.001, 104.298], ÷255 → 4 dense blocks of 32, 64, 128, 256 channels (each: a stride-2
conv — a full 3×3 conv in the first block, depthwise-separable in the others — then three
depthwise-separable 3×3 convs, each fed the ReLU of the sum of all earlier outputs of the block;
TensorFlow 'same' padding, so the odd padded row/column of a stride-2 conv is at the end) →
7×7 average pool → FC 256→7 → softmax.

Crop: the face box (x, y, w, h) is cut out as face-api's ``extractFaceTensors`` does (clipped at
the image borders), padded to a square with zeros (centred; the odd pixel after), and resized to
112×112 with TensorFlow's legacy bilinear resize (no half-pixel centres, as
``tf.image.resizeBilinear(x, size, false, false)``). The boxes are the benchmark's Haar boxes
(``expression_classifier.find_boxes``: the same boxes for both classifiers). face-api itself
crops at its SSD detector's box, which on the real clips is ~19 % narrower, about as tall and its
centre ~0.05 box widths lower (``ssd_boxes`` in the reference file); the dominant class on the two crops agrees
on 9 of the 12 reference frames.

    from faceapi_classifier import classify, to_project
    from expression_classifier import find_boxes
    boxes = find_boxes(source_frames)
    p_src, p_edit = classify(source_frames, boxes), classify(edited_frames, boxes)   # [N, 7], LABELS order
    to_project(p_edit)                                                               # PROJECT_LABELS order

Frames are RGB ``uint8`` ``[H, W, 3]``.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from expression_classifier import PROJECT_LABELS, find_boxes  # noqa: F401  (find_boxes: the shared Haar boxes)

WEIGHTS = Path(__file__).parent / "data" / "faceapi_expression.safetensors"
#: face-api's FACE_EXPRESSION_LABELS (its output order)
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
TO_PROJECT = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "surprised": "surprised",
              "fear": "fearful", "disgusted": "disgusted"}
_PROJECT_INDEX = [LABELS.index(TO_PROJECT[p]) for p in PROJECT_LABELS]
SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)


# ---------------------------------------------------------------- network

def _same_pad(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """TensorFlow 'same' padding: total = max((ceil(n/s)−1)·s + k − n, 0), the odd pixel at the end."""
    pads = []
    for n in (x.shape[3], x.shape[2]):  # F.pad order: (left, right, top, bottom)
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads) if any(pads) else x


def _sep(x, w, name, stride):
    """face-api's depthwiseSeparableConv: tf.separableConv2d(x, depthwise, pointwise, stride, 'same') + bias."""
    x = F.conv2d(_same_pad(x, 3, stride), w[f"{name}/depthwise_filter"], stride=stride, groups=x.shape[1])
    return F.conv2d(x, w[f"{name}/pointwise_filter"], w[f"{name}/bias"])


def _dense_block(x, w, block, first):
    if first:
        out1 = F.conv2d(_same_pad(x, 3, 2), w[f"{block}/conv0/filters"], w[f"{block}/conv0/bias"], stride=2)
    else:
        out1 = _sep(x, w, f"{block}/conv0", 2)
    out1 = F.relu(out1)
    out2 = _sep(out1, w, f"{block}/conv1", 1)
    out3 = _sep(F.relu(out1 + out2), w, f"{block}/conv2", 1)
    out4 = _sep(F.relu(out1 + (out2 + out3)), w, f"{block}/conv3", 1)
    return F.relu(out1 + (out2 + (out3 + out4)))


def forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x: [N, 3, 112, 112] RGB in 0..255 (float) -> [N, 7] softmax probabilities in LABELS order."""
    x = (x - torch.tensor(MEAN_RGB, dtype=x.dtype).view(1, 3, 1, 1)) / 255.0
    for i, block in enumerate(("dense0", "dense1", "dense2", "dense3")):
        x = _dense_block(x, w, block, first=i == 0)
    x = F.avg_pool2d(x, 7, 2)  # tf.avgPool(out, [7, 7], [2, 2], 'valid') on 7x7: the mean
    x = x.flatten(1) @ w["fc/weights"] + w["fc/bias"]
    return torch.softmax(x, dim=1)


def _to_torch_layout(name: str, t: torch.Tensor) -> torch.Tensor:
    if name.endswith("/filters") or name.endswith("/pointwise_filter"):
        return t.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
    if name.endswith("/depthwise_filter"):
        return t.permute(2, 3, 0, 1).contiguous()  # HWC1 -> C1HW
    return t


@functools.lru_cache(maxsize=1)
def load_weights(path: str = str(WEIGHTS)) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        labels = tuple(json.loads(f.metadata()["labels"]))
        assert labels == LABELS, labels
        w = {k: _to_torch_layout(k, f.get_tensor(k)) for k in f.keys()}
    assert w["dense0/conv0/filters"].shape == (32, 3, 3, 3) and w["fc/weights"].shape == (256, 7)
    return w


# ---------------------------------------------------------------- preprocessing (face-api's tensor path)

def _resize_bilinear_tf(img: np.ndarray, size: int) -> np.ndarray:
    """tf.image.resizeBilinear(img, [size, size], alignCorners=false, halfPixelCenters=false), as
    tfjs's CPU kernel computes it (float64 arithmetic, float32 result)."""
    h, w = img.shape[:2]

    def axis(n_in):
        src = np.arange(size, dtype=np.float64) * (n_in / size)
        lo = np.maximum(0, np.floor(src)).astype(np.int64)
        hi = np.minimum(n_in - 1, np.ceil(src)).astype(np.int64)
        return lo, hi, src - lo

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    a = img.astype(np.float64)
    fx = fx[None, :, None]
    top = a[y0][:, x0] + (a[y0][:, x1] - a[y0][:, x0]) * fx
    bottom = a[y1][:, x0] + (a[y1][:, x1] - a[y1][:, x0]) * fx
    return (top + (bottom - top) * fy[:, None, None]).astype(np.float32)


def crop(frame: np.ndarray, box) -> np.ndarray:
    """face-api's input for one face: [112, 112, 3] float32 RGB in 0..255."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError("face-api's classifier needs RGB frames [H, W, 3]")
    H, W = frame.shape[:2]
    x, y, w, h = box
    cx, cy = max(x, 0), max(y, 0)  # Box.clipAtImageBorders
    cw, ch = int(np.floor(min(x + w - cx, W - cx))), int(np.floor(min(y + h - cy, H - cy)))
    if cw <= 0 or ch <= 0:
        raise ValueError(f"face box {tuple(box)} lies outside the {W}x{H} frame")
    face = frame[int(cy):int(cy) + ch, int(cx):int(cx) + cw].astype(np.float32)
    diff = abs(ch - cw)
    if diff:  # padToSquare(isCenterImage=true): round(diff/2) zeros after, the rest before
        after = int(np.floor(diff * 0.5 + 0.5))
        before = diff - after
        pad = ((0, 0), (before, after), (0, 0)) if ch > cw else ((before, after), (0, 0), (0, 0))
        face = np.pad(face, pad)
    if face.shape[0] != SIZE:
        face = _resize_bilinear_tf(face, SIZE)
    return face


@torch.inference_mode()
def classify(frames: list[np.ndarray], boxes=None) -> np.ndarray:
    """[N, 7] probabilities in LABELS order. ``boxes``: one (x, y, w, h) per frame (the source clip's,
    to crop an edit exactly like its source); the Haar boxes of ``frames`` themselves when None."""
    if boxes is None:
        boxes = find_boxes(frames)
    if len(boxes) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} boxes")
    w = load_weights()
    out = []
    for i in range(0, len(frames), 32):
        batch = np.stack([crop(f, b) for f, b in zip(frames[i:i + 32], boxes[i:i + 32])])
        out.append(forward(w, torch.from_numpy(batch).permute(0, 3, 1, 2)).double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 7))


def to_project(probs: np.ndarray) -> np.ndarray:
    """Reorder [..., 7] probabilities from LABELS to PROJECT_LABELS."""
    return np.asarray(probs)[..., _PROJECT_INDEX]

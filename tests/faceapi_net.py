"""face-api.js's FaceFeatureExtractor and face crop in torch: the part its networks share (tests only).

``@vladmandic/face-api@1.7.15`` (MIT, © 2018 Vincent Mühler; © Vladimir Mandic) builds its
expression net (``FaceExpressionNet``) and its 68-point landmark net (``FaceLandmark68Net``) on
one trunk, ``src/faceFeatureExtractor/FaceFeatureExtractor.ts``, fed one crop,
``extractFaceTensors`` + ``NetInput.toBatchTensor(112, isCenterInputs=true)``. This module is that
trunk and that crop, re-implemented from the package's source; each network adds its own FC head:

* ``tests/faceapi_classifier.py`` — FC 256→7, softmax (expressions);
* ``tests/faceapi_landmarks.py`` — FC 256→136 (68 points), mapped back from the padded input.

Network: RGB minus the mean [122.782, 117.001, 104.298], ÷255 → 4 dense blocks of 32, 64, 128,
256 channels (each: a stride-2 conv — a full 3×3 conv in the first block, depthwise-separable in
the others — then three depthwise-separable 3×3 convs, each fed the ReLU of the sum of all earlier
outputs of the block; TensorFlow 'same' padding, so the odd padded row/column of a stride-2 conv
is at the end) → 7×7 average pool → [N, 256] features.

Weights are read from safetensors files in tfjs layout under tfjs's names (written by
``scripts/export_faceapi_classifier.py``); :func:`load_weights` turns them into torch layout.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)
BLOCKS = ("dense0", "dense1", "dense2", "dense3")


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
    """face-api's denseBlock4 (src/faceFeatureExtractor/denseBlock.ts)."""
    if first:
        out1 = F.conv2d(_same_pad(x, 3, 2), w[f"{block}/conv0/filters"], w[f"{block}/conv0/bias"], stride=2)
    else:
        out1 = _sep(x, w, f"{block}/conv0", 2)
    out1 = F.relu(out1)
    out2 = _sep(out1, w, f"{block}/conv1", 1)
    out3 = _sep(F.relu(out1 + out2), w, f"{block}/conv2", 1)
    out4 = _sep(F.relu(out1 + (out2 + out3)), w, f"{block}/conv3", 1)
    return F.relu(out1 + (out2 + (out3 + out4)))


def features(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """FaceFeatureExtractor.forwardInput: x [N, 3, 112, 112] RGB in 0..255 (float) -> [N, 256]."""
    x = (x - torch.tensor(MEAN_RGB, dtype=x.dtype).view(1, 3, 1, 1)) / 255.0
    for i, block in enumerate(BLOCKS):
        x = _dense_block(x, w, block, first=i == 0)
    x = F.avg_pool2d(x, 7, 2)  # tf.avgPool(out, [7, 7], [2, 2], 'valid') on 7x7: the mean
    return x.flatten(1)


def fc(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """face-api's fullyConnectedLayer: x @ fc/weights + fc/bias."""
    return x @ w["fc/weights"] + w["fc/bias"]


def _to_torch_layout(name: str, t: torch.Tensor) -> torch.Tensor:
    if name.endswith("/filters") or name.endswith("/pointwise_filter"):
        return t.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
    if name.endswith("/depthwise_filter"):
        return t.permute(2, 3, 0, 1).contiguous()  # HWC1 -> C1HW
    return t


def load_weights(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors in torch layout as float32, the file's metadata) of an exported face-api network."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        w = {k: _to_torch_layout(k, f.get_tensor(k).float()) for k in f.keys()}
    assert w["dense0/conv0/filters"].shape == (32, 3, 3, 3) and w["fc/weights"].shape[0] == 256, path
    return w, meta


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


def crop_region(frame_shape, box) -> tuple[int, int, int, int]:
    """Where face-api's extractFaceTensors cuts the face box (x, y, w, h) out of a frame of
    ``frame_shape`` (Box.clipAtImageBorders): (x0, y0, width, height) in pixels."""
    H, W = frame_shape[:2]
    x, y, w, h = box
    cx, cy = max(x, 0), max(y, 0)
    cw, ch = int(np.floor(min(x + w - cx, W - cx))), int(np.floor(min(y + h - cy, H - cy)))
    if cw <= 0 or ch <= 0:
        raise ValueError(f"face box {tuple(box)} lies outside the {W}x{H} frame")
    return int(cx), int(cy), cw, ch


def crop(frame: np.ndarray, box) -> np.ndarray:
    """face-api's input for one face: [112, 112, 3] float32 RGB in 0..255."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError("face-api's networks need RGB frames [H, W, 3]")
    cx, cy, cw, ch = crop_region(frame.shape, box)
    face = frame[cy:cy + ch, cx:cx + cw].astype(np.float32)
    diff = abs(ch - cw)
    if diff:  # padToSquare(isCenterImage=true): round(diff/2) zeros after, the rest before
        after = int(np.floor(diff * 0.5 + 0.5))
        before = diff - after
        pad = ((0, 0), (before, after), (0, 0)) if ch > cw else ((before, after), (0, 0), (0, 0))
        face = np.pad(face, pad)
    if face.shape[0] != SIZE:
        face = _resize_bilinear_tf(face, SIZE)
    return face


def batches(frames, boxes, size: int = 32):
    """[n, 3, 112, 112] float32 tensors of face-api crops, ``size`` frames at a time."""
    if len(boxes) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} boxes")
    for i in range(0, len(frames), size):
        batch = np.stack([crop(f, b) for f, b in zip(frames[i:i + size], boxes[i:i + size])])
        yield torch.from_numpy(batch).permute(0, 3, 1, 2)

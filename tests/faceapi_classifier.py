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

Network (face-api's ``FaceFeatureExtractor``, shared with the landmark net in
``tests/faceapi_net.py``, + ``FaceProcessor`` FC): RGB minus the mean
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

from expression_classifier import PROJECT_LABELS, find_boxes  # noqa: F401  (find_boxes: the shared Haar boxes)
from faceapi_net import MEAN_RGB, SIZE, _resize_bilinear_tf, _same_pad, batches, crop, fc, features  # noqa: F401

WEIGHTS = Path(__file__).parent / "data" / "faceapi_expression.safetensors"
#: face-api's FACE_EXPRESSION_LABELS (its output order)
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
TO_PROJECT = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "surprised": "surprised",
              "fear": "fearful", "disgusted": "disgusted"}
_PROJECT_INDEX = [LABELS.index(TO_PROJECT[p]) for p in PROJECT_LABELS]


def forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x: [N, 3, 112, 112] RGB in 0..255 (float) -> [N, 7] softmax probabilities in LABELS order."""
    return torch.softmax(fc(w, features(w, x)), dim=1)


@functools.lru_cache(maxsize=1)
def load_weights(path: str = str(WEIGHTS)) -> dict[str, torch.Tensor]:
    import faceapi_net

    w, meta = faceapi_net.load_weights(path)
    labels = tuple(json.loads(meta["labels"]))
    assert labels == LABELS, labels
    assert w["fc/weights"].shape == (256, 7)
    return w


@torch.inference_mode()
def classify(frames: list[np.ndarray], boxes=None) -> np.ndarray:
    """[N, 7] probabilities in LABELS order. ``boxes``: one (x, y, w, h) per frame (the source clip's,
    to crop an edit exactly like its source); the Haar boxes of ``frames`` themselves when None."""
    if boxes is None:
        boxes = find_boxes(frames)
    w = load_weights()
    out = [forward(w, x).double().numpy() for x in batches(frames, boxes)]
    return np.concatenate(out) if out else np.zeros((0, 7))


def to_project(probs: np.ndarray) -> np.ndarray:
    """Reorder [..., 7] probabilities from LABELS to PROJECT_LABELS."""
    return np.asarray(probs)[..., _PROJECT_INDEX]

"""A second, independent 68-point landmark model for the tests (torch, CPU): face-api.js's FaceLandmark68Net.

The product fits dlib's 68-point regressor (an ensemble of regression trees trained on iBUG
300-W, ``sserd_core/face.py``) and edits through it; an edit measured only by re-fitting dlib on
the output is measured by the model that drove it. This module is a different model to measure
with: **FaceLandmark68Net** (the full net, not ``FaceLandmark68TinyNet``) as the npm package
``@vladmandic/face-api@1.7.15`` ships it (``model/face_landmark_68_model.bin``, sha256
``4611ef65…299b``; MIT, © 2018 Vincent Mühler (face-api.js); © Vladimir Mandic), re-implemented
in torch from the package's source (``src/faceLandmarkNet``, ``src/faceFeatureExtractor``) and
loaded from ``tests/data/faceapi_landmark68.safetensors``, which
``scripts/export_faceapi_classifier.py --landmarks`` dequantised from the package's file. It is a
CNN (depthwise-separable dense blocks, 112×112 colour input) that regresses all 68 points at once;
face-api.js's documentation says it was "trained on a dataset of ~35k face images labeled with 68
face landmark points" — the dataset is not named, so an overlap with 300-W cannot be ruled out;
what is certain is that the model, its training and its input are not dlib's.
``tests/test_faceapi_landmarks.py`` checks the port against the points the real JavaScript gives
(``tests/data/faceapi_landmarks_reference.json``, made by ``scripts/faceapi_landmarks_reference.cjs``
in Node) and that its mouth opening follows dlib's on the real clips.

Points: the 68-point iBUG layout, the same indices as dlib's (jaw 0-16, brows 17-21 / 22-26,
nose 27-35, eyes 36-41 / 42-47, outer lips 48-59 with corners 48 and 54, inner lips 60-67), in
frame pixels ``(x, y)``.

Network (``tests/faceapi_net.py``: face-api's ``FaceFeatureExtractor``, the trunk shared with its
expression net) → FC 256→136 = (x, y) of 68 points, interleaved, as fractions of the 112×112
zero-padded square input. ``FaceLandmark68NetBase.postProcess`` maps them to the face crop:
``x = (out_x · 112 − pad_x) / (w · s)``, ``y = (out_y · 112 − pad_y) / (h · s)`` with
``s = 112 / max(w, h)`` and ``pad = |w − h| · s / 2`` on the shorter side (0 on the other), times
the crop's width/height; plus the crop's origin in the frame. (The real padding puts the odd
zero column/row after the crop, the postProcess assumes an even split: on odd differences face-api
is off by half a crop pixel, and so, faithfully, is this port.)

Crop: as ``tests/faceapi_classifier.py`` — the box (x, y, w, h) clipped at the frame borders
(face-api's ``extractFaceTensors``), zero-padded to a centred square, TensorFlow legacy bilinear
resize to 112 px. The box is the benchmark's Haar box (``find_boxes``, shared with both expression
classifiers) enlarged and moved down to hold the chin (:func:`landmark_box`; :func:`face_boxes` does
both). Use the *source* frames' boxes for an edit, so that source and edit are cropped alike.

    from faceapi_landmarks import face_boxes, landmarks, mouth_opening, canonical
    boxes = face_boxes(source_frames)
    lm_src, lm_edit = landmarks(source_frames, boxes), landmarks(edited_frames, boxes)   # [N, 68, 2] px
    mouth_opening(lm_src), mouth_opening(lm_edit)                                        # [N], IOD units
    canonical(lm_edit)[:, 48]      # a lip corner in canonical face space (eye centres at (∓0.5, 0))

Frames are RGB ``uint8`` ``[H, W, 3]``.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

import faceapi_net
from expression_classifier import find_boxes  # noqa: F401  (the benchmark's Haar boxes, shared)
from faceapi_net import SIZE, crop, crop_region  # noqa: F401

WEIGHTS = Path(__file__).parent / "data" / "faceapi_landmark68.safetensors"
N_POINTS = 68
#: the landmark crop from a Haar box: scaled by BOX_SCALE about its centre moved down by BOX_SHIFT of its height
BOX_SCALE, BOX_SHIFT = 1.2, 0.15


def landmark_box(haar_box) -> tuple[int, int, int, int]:
    """The crop (x, y, w, h) to give the landmark net for a Haar face box.

    The Haar box is tight: it starts at the brows and ends above the chin (on the real clips dlib's
    68 points span 0.22-1.13 of its height from its top, 0.05-0.95 of its width). face-api's net puts
    the whole face inside whatever crop it gets: on the Haar box itself its chin lies on the box's
    bottom edge, 0.1-0.35 inter-ocular distances above the chin, and the face is squeezed upwards
    (mouth openings ~0.2-0.6× dlib's). Scaled by 1.2 about a centre 0.15 box heights lower, the crop
    holds the whole face with a margin, as face-api's own detectors' boxes do. (Chosen on the real
    clips among scales 1.0-1.3 and shifts 0-0.15: it brought face-api's jaw within 0.05-0.09 IOD of
    dlib's, from 0.09-0.19.)"""
    x, y, w, h = haar_box
    cx, cy = x + w / 2, y + h / 2 + BOX_SHIFT * h
    W, H = w * BOX_SCALE, h * BOX_SCALE
    return int(round(cx - W / 2)), int(round(cy - H / 2)), int(round(W)), int(round(H))


def face_boxes(frames: list[np.ndarray]) -> list[tuple[int, int, int, int]]:
    """One landmark crop per frame: :func:`landmark_box` of the benchmark's Haar boxes (``find_boxes``)."""
    return [landmark_box(b) for b in find_boxes(frames)]


@functools.lru_cache(maxsize=1)
def load_weights(path: str = str(WEIGHTS)) -> dict[str, torch.Tensor]:
    w, meta = faceapi_net.load_weights(path)
    assert "iBUG" in meta["points"] and w["fc/weights"].shape == (256, 2 * N_POINTS), path
    return w


def forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x: [N, 3, 112, 112] RGB in 0..255 (float) -> [N, 68, 2]: (x, y) as fractions of the padded square input."""
    return faceapi_net.fc(w, faceapi_net.features(w, x)).view(-1, N_POINTS, 2)


def to_crop(out: np.ndarray, width: int, height: int) -> np.ndarray:
    """FaceLandmark68NetBase.postProcess + FaceLandmarks68: the net's output [..., 68, 2] -> crop pixels."""
    s = SIZE / max(width, height)
    w, h = width * s, height * s
    pad = np.array([abs(w - h) / 2 if w < h else 0.0, abs(w - h) / 2 if h < w else 0.0])
    rel = (np.asarray(out, np.float64) * SIZE - pad) / np.array([w, h])
    return rel * np.array([width, height], np.float64)


@torch.inference_mode()
def landmarks(frames: list[np.ndarray], boxes=None) -> np.ndarray:
    """``[N, 68, 2]`` float64 landmarks in frame pixels (iBUG order, as dlib's), one face per frame.
    ``boxes``: the crop (x, y, w, h) per frame — :func:`face_boxes` of the source clip, to measure an
    edit exactly like its source; ``face_boxes(frames)`` when None. (The crop is given to the net as
    it is: a bare Haar box cuts the chin off, see :func:`landmark_box`.)"""
    if boxes is None:
        boxes = face_boxes(frames)
    w = load_weights()
    out = [forward(w, x).double().numpy() for x in faceapi_net.batches(frames, boxes)]
    if not out:
        return np.zeros((0, N_POINTS, 2))
    out = np.concatenate(out)
    pts = np.empty_like(out)
    for i, (frame, box) in enumerate(zip(frames, boxes)):
        x0, y0, cw, ch = crop_region(frame.shape, box)
        pts[i] = to_crop(out[i], cw, ch) + (x0, y0)
    return pts


def mouth_opening(lm: np.ndarray) -> np.ndarray:
    """Inner-lip opening ``[N]`` (a float for one face ``[68, 2]``): the mean vertical gap of the pairs
    (61, 67), (62, 66), (63, 65), in units of the distance between the eye centres (midpoints of
    36/39 and 42/45), measured perpendicular to the eye line. The same arithmetic as the product's
    ``RenderResult.source_mouth`` / ``edited_mouth`` (``sserd_core.geometry.mouth_opening``), so the
    two differ only by the landmark model."""
    from sserd_core.geometry import mouth_opening as opening

    return opening(lm)


def canonical(lm: np.ndarray) -> np.ndarray:
    """Landmarks ``[..., 68, 2]`` in canonical face space (eye centres at (∓0.5, 0), unit = inter-ocular
    distance, +y down the face; ``sserd_core.geometry.canonicalise``): brows 17-26 and lip corners 48/54
    compared across frames and faces."""
    from sserd_core.geometry import canonicalise

    return canonicalise(lm)

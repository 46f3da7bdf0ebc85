"""Face alignment of the neural backend: the crop geometry a checkpoint was trained with, and back.

:func:`alignment_matrix` maps a frame onto the network's input crop (for the official model the
Umeyama fit of the 68 tracked landmarks onto SSERD's template in a 256 px image, then the official
resize-to-320 + centre-crop-256, a 1.25× zoom — one similarity, one resampling);
:func:`decoded_alignment` / :func:`invert_affine` give the un-align map of paste-back, and
:func:`face_mask` the feathered region pasted. Training (:mod:`sserd_core.train.preprocess`) crops
with the same functions, so training and inference see the same framing.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .. import geometry
from ..errors import SSERDError
from ..blend import feather_mask


#: The official input geometry (``datasets/mead_dataset.py``): the face is aligned onto the 68-point
#: template in a 256 px image, then ``Resize(320)`` + ``CenterCrop(256)`` — a 1.25× zoom about the centre.
#: The encoder only ever saw faces framed this way. ``paste_back`` of the official code undoes it
#: (pad to 320, resize to 256, inverse warp). Here both steps are folded into one similarity.
TEMPLATE_SIZE, ZOOM_LOAD = 256, 320


@lru_cache(maxsize=1)
def sserd_template() -> np.ndarray:
    """SSERD's 68-point alignment template ``float64 [68, 2]`` in the official 256 px aligned image (before the zoom)."""
    data = json.loads((Path(__file__).parent.parent / "models" / "sserd_template68.json").read_text())
    return np.asarray(data["points"], np.float64)


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer ∘ inner`` of two ``[2, 3]`` affine maps (``inner`` applied first)."""
    a = np.vstack([np.asarray(outer, np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(inner, np.float64), [0.0, 0.0, 1.0]])
    return (a @ b)[:2]


def pixel_scale(k: float) -> np.ndarray:
    """``[2, 3]`` map of pixel coordinates (integer = pixel centre, as cv2) when an image is resized by ``k``:
    ``x' = (x + 0.5)·k − 0.5`` (what ``cv2.resize`` / PIL's resize do to a point)."""
    t = 0.5 * k - 0.5
    return np.array([[k, 0.0, t], [0.0, k, t]])


def crop_zoom_matrix(size: int) -> np.ndarray:
    """``[2, 3]`` template-aligned px → network-input px for a ``size`` px crop: the official resize of the
    aligned image to ``size·320/256`` and centre crop back to ``size`` (at 256: ``x' = 1.25·x − 31.875``)."""
    load = int(round(size * ZOOM_LOAD / TEMPLATE_SIZE))
    top = int(round((load - size) / 2.0))  # torchvision CenterCrop's offset
    m = pixel_scale(load / size)
    m[:, 2] -= top
    return m


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``points`` ``[N, 2]`` through ``m`` ``[2, 3]``."""
    pts = np.asarray(points, np.float64)
    return pts @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]


def template_in_crop(size: int) -> np.ndarray:
    """Where the template points lie in the ``size`` px crop the network sees (``float64 [68, 2]``;
    at 256 px they span about x 39–200, y 74–243)."""
    return apply_affine(compose_affine(crop_zoom_matrix(size), pixel_scale(size / TEMPLATE_SIZE)), sserd_template())


def crop_geometry(alignment: str) -> str:
    """A name for how ``alignment`` frames the face (recorded in preprocessing caches, so crops cut another
    way are never mixed into one training set)."""
    if alignment == "sserd-template":
        return f"template{TEMPLATE_SIZE}-resize{ZOOM_LOAD}-centrecrop{TEMPLATE_SIZE}"
    if alignment == "ffhq":
        return "ffhq-quad"
    raise SSERDError(f"Unknown alignment '{alignment}' (use sserd-template or ffhq).")


similarity_fit = geometry.similarity_fit  # Umeyama, defined once in sserd_core.geometry


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square ``[4, 2]`` (top-left, bottom-left, bottom-right, top-right) from 68 landmarks.

    Centred a little below the eyes towards the mouth, sized by the larger of twice the
    eye distance and 1.8× the eye–mouth distance (the FFHQ / pSp / StyleGANEX recipe).
    """
    lm = np.asarray(landmarks, np.float64)
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def alignment_matrix(landmarks: np.ndarray, size: int, alignment: str = "sserd-template") -> np.ndarray:
    """Similarity ``float64 [2, 3]`` frame px → the ``size`` × ``size`` crop the network sees, from 68 landmarks.

    ``"sserd-template"``: the official geometry — the Umeyama fit of the landmarks onto the template
    (in a 256 px image, scaled to ``size``) followed by the official 1.25× zoom (:func:`crop_zoom_matrix`).
    ``"ffhq"``: the FFHQ eye/mouth quad mapped onto the whole crop.
    """
    if alignment == "sserd-template":
        onto_template = similarity_fit(landmarks, apply_affine(pixel_scale(size / TEMPLATE_SIZE), sserd_template()))
        return compose_affine(crop_zoom_matrix(size), onto_template)
    if alignment == "ffhq":
        quad = ffhq_quad(landmarks)
        dst = np.array([[0, 0], [0, size], [size, size], [size, 0]], np.float64)
        return similarity_fit(quad, dst)
    raise SSERDError(f"Unknown alignment '{alignment}' (use sserd-template or ffhq).")


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse ``[2, 3]`` of an invertible affine map ``[2, 3]`` (crop px → frame px for paste-back)."""
    a = np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(a)[:2]


def decoded_alignment(m: np.ndarray, input_size: int, side: int) -> np.ndarray:
    """Frame px → px of the decoded face (``side`` px, e.g. 1024) for a crop aligned by ``m`` at ``input_size``;
    its :func:`invert_affine` is the un-align map of paste-back."""
    return compose_affine(pixel_scale(side / input_size), m)


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int, alignment: str) -> tuple[np.ndarray, np.ndarray]:
    """``(crop uint8 [size, size, 3], frame→crop [2, 3])`` for one face, in one resampling of the frame."""
    m = alignment_matrix(landmarks, size, alignment)
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA if m[0, 0] ** 2 + m[0, 1] ** 2 < 0.5
                          else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, m


def face_mask(landmarks_crop: np.ndarray, size: int) -> np.ndarray:
    """Feathered mask ``float32 [size, size]`` over the face: jaw line plus brows lifted to the forehead."""
    lm = np.asarray(landmarks_crop, np.float64)
    jaw, brows = lm[0:17], lm[17:27]
    eye_y = lm[36:48, 1].mean()
    nose_len = max(lm[33, 1] - eye_y, 1.0)
    forehead = brows.copy()
    forehead[:, 1] -= 0.6 * nose_len
    return feather_mask(np.concatenate([jaw, forehead]).astype(np.float32), (size, size), grow=0.02, feather=0.1)



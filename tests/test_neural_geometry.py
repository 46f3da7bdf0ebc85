"""The crop the neural backend cuts is the one the official SSERD network was trained on, and un-aligning undoes it.

Official geometry (ZH-Xu410/SSERD): ``preprocessing/align.py`` warps the frame with the Umeyama fit of the
landmarks onto ``preprocessing/files/template.gz`` (our ``sserd_template68.json``) into a 256 px image
(``cv2.warpAffine``, Lanczos), then ``datasets/mead_dataset.py`` applies ``T.Resize((320, 320))`` +
``T.CenterCrop((256, 256))``. The test re-creates that chain with real pixels (OpenCV + PIL, as torchvision
resizes a PIL image) on a frame with bright dots at landmark positions and compares where the dots land.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from sserd_core import neural

# well-separated landmarks (jaw, brows, nose tip, eye corners, mouth corners) so the dots do not merge
DOTS = [0, 4, 8, 12, 16, 19, 24, 30, 36, 45, 48, 54]


def _similarity(scale, angle, shift):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, shift[0]], [scale * s, scale * c, shift[1]]])


def _dot_frame(points, shape, sigma):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    img = np.zeros(shape, np.float64)
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return np.repeat((np.clip(img, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, 2)


def _centroids(img, near, radius=6):
    g = img[..., 0].astype(np.float64)
    out = []
    for x, y in near:
        x0, y0 = int(round(x)) - radius, int(round(y)) - radius
        win = g[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
        win = np.where(win > 0.2 * win.max(), win, 0)
        yy, xx = np.mgrid[y0:y0 + win.shape[0], x0:x0 + win.shape[1]]
        out.append(((win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()))
    return np.asarray(out)


@pytest.fixture(scope="module")
def face_in_frame():
    """A face: the template mapped into a 640×480 frame by a known similarity (tilted, 1.6× the template size)."""
    frame_from_template = _similarity(1.6, np.deg2rad(12), (150.0, 60.0))
    landmarks = neural.apply_affine(frame_from_template, neural.sserd_template())
    frame = _dot_frame(landmarks[DOTS], (480, 640), sigma=2.4)
    return frame, landmarks, neural.invert_affine(frame_from_template)


def _official_crop(frame, align_transform):
    aligned = cv2.warpAffine(frame, align_transform, (256, 256), flags=cv2.INTER_LANCZOS4)  # preprocessing/align.py
    loaded = Image.fromarray(aligned).resize((320, 320), Image.BILINEAR)                   # T.Resize((320, 320))
    return np.asarray(loaded)[32:288, 32:288]                                               # T.CenterCrop(256)


def test_template_points_land_where_the_official_transforms_put_them(face_in_frame):
    frame, landmarks, official_align = face_in_frame
    official = _official_crop(frame, official_align)
    crop, m = neural.align_face(frame, landmarks, 256, "sserd-template")
    expected = _centroids(official, neural.apply_affine(m, landmarks[DOTS]))
    # the mapped landmarks and the dots in our crop both sit on the official positions (± 0.5 px)
    np.testing.assert_array_less(np.abs(neural.apply_affine(m, landmarks[DOTS]) - expected), 0.5)
    np.testing.assert_array_less(np.abs(_centroids(crop, expected) - expected), 0.5)
    # the official framing: a 1.25× zoom of the template image (x 57–186 / y 85–220 → x 39–200 / y 74–243)
    t = neural.template_in_crop(256)
    assert np.allclose(t.min(0), [39.4, 74.4], atol=0.5) and np.allclose(t.max(0), [200.6, 243.1], atol=0.5)
    np.testing.assert_allclose(neural.apply_affine(m, landmarks), t, atol=1e-6)


def test_prototypes_and_preprocessing_use_the_same_crop(face_in_frame, monkeypatch):
    """The reference encoder (prototypes) and `sserd preprocess` cut faces with ``align_face`` too."""
    frame, landmarks, _ = face_in_frame
    seen = []
    real = neural.align_face

    def spy(rgb, lm, size, alignment):
        crop, m = real(rgb, lm, size, alignment)
        seen.append(m)
        return crop, m

    monkeypatch.setattr(neural, "align_face", spy, raising=True)  # what `sserd preprocess` imports
    monkeypatch.setattr(neural.editor, "align_face", spy, raising=True)  # the editor's own reference

    class Net:
        def encode_reference(self, x):
            return x.mean((2, 3))[:, None]

    ed = neural.NeuralEditor.__new__(neural.NeuralEditor)
    ed.net, ed.input_size, ed.alignment = Net(), 256, "sserd-template"
    ed.device, ed.dtype = neural.pick_device("cpu"), neural.pick_dtype(neural.pick_device("cpu"))
    ed.encode_reference(frame, landmarks)
    np.testing.assert_allclose(neural.apply_affine(seen[-1], landmarks), neural.template_in_crop(256), atol=1e-6)


@pytest.mark.parametrize("side", [256, 1024])
def test_align_then_unalign_round_trip(face_in_frame, side):
    """align → (decoder output at ``side`` px) → un-align gives the frame back: points exactly, pixels closely."""
    _, landmarks, _ = face_in_frame
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float64)
    frame = np.stack([127 + 60 * np.sin(xx / 23) * np.cos(yy / 31), 127 + 80 * np.cos((xx + yy) / 41),
                      90 + xx / 8], -1).round().astype(np.uint8)  # smooth, so resampling errors stay small
    crop, m = neural.align_face(frame, landmarks, 256, "sserd-template")
    decoded = cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC)  # stands in for the decoder's output
    m_out = neural.decoded_alignment(m, 256, side)
    back_map = neural.invert_affine(m_out)
    np.testing.assert_allclose(neural.apply_affine(back_map, neural.apply_affine(m_out, landmarks)), landmarks,
                               atol=1e-9)
    back = cv2.warpAffine(decoded, back_map, (640, 480), flags=cv2.INTER_LINEAR)
    # compare inside the face (the crop covers it with margin)
    hull = cv2.convexHull(landmarks.astype(np.float32)).astype(np.int32)
    inside = cv2.fillConvexPoly(np.zeros((480, 640), np.uint8), hull, 1).astype(bool)
    err = np.abs(back.astype(int) - frame.astype(int))[inside]
    assert err.mean() < 1.5 and np.percentile(err, 99) < 6, (err.mean(), np.percentile(err, 99))
    # a half-pixel slip in the un-align map would show as a systematic shift: none
    shifted = cv2.warpAffine(decoded, back_map + [[0, 0, 1.0], [0, 0, 0]], (640, 480), flags=cv2.INTER_LINEAR)
    assert np.abs(shifted.astype(int) - frame.astype(int))[inside].mean() > err.mean() + 0.5

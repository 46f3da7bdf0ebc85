"""The official detection option (MTCNN with facenet-pytorch's bundled weights, detect.py's smoothing and crop)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sserd_core.errors import SSERDError
from sserd_core.train import mtcnn as M


def _random_weights(seed=0):
    torch.manual_seed(seed)
    PNet, RNet, ONet = M._nets()
    return {"pnet": PNet().state_dict(), "rnet": RNet().state_dict(), "onet": ONet().state_dict()}


def _have_weights() -> bool:
    try:
        M.weights_dir()
        return True
    except SSERDError:
        return False


def test_network_layout_matches_the_bundled_files():
    if not _have_weights():
        pytest.skip("facenet-pytorch's weights not installed (pip install --no-deps facenet-pytorch)")
    d = M.weights_dir()
    mine = _random_weights()
    for name in ("pnet", "rnet", "onet"):
        ref = torch.load(d / f"{name}.pt", map_location="cpu", weights_only=True)
        assert {k: tuple(v.shape) for k, v in ref.items()} == {k: tuple(v.shape) for k, v in mine[name].items()}


def test_missing_weights_say_what_to_install(monkeypatch):
    monkeypatch.setenv("SSERD_MTCNN_DIR", "/nonexistent/folder")
    with pytest.raises(SSERDError, match="facenet-pytorch"):
        M.weights_dir()


def test_detect_py_smoothing_and_crop():
    # a box jumping for one frame is smoothed away by the temporal median; a missing one is filled
    boxes = [np.array([100.0, 80, 200, 220])] * 9
    boxes[4] = np.array([140.0, 120, 240, 260])
    boxes[6] = None
    out = M.official_boxes(boxes)
    assert out.shape == (9, 4)
    # squared the official way: width = height, centred on the original box's horizontal centre
    assert np.allclose(out[:, 2] - out[:, 0], out[:, 3] - out[:, 1])
    assert np.allclose(out[4], [80, 80, 220, 220])
    # extract_face(img, box, 256, margin=70): 70 output px of margin, clipped to the image
    x0, y0, x1, y1 = M.crop_box(np.array([80.0, 80, 220, 220]), 640, 480)
    m = 70 * 140 / (256 - 70)
    assert (x0, y0, x1, y1) == (int(80 - m / 2), int(80 - m / 2), int(220 + m / 2), int(220 + m / 2))
    assert M.crop_box(np.array([0.0, 0, 100, 100]), 90, 90)[2:] == (90, 90)
    with pytest.raises(SSERDError, match="no face"):
        M.official_boxes([None, None])


def test_cascade_runs_with_any_weights_of_the_layout():
    det = M.MTCNN(_random_weights(), thresholds=(0.0, 0.0, 0.0), min_face=40)
    boxes, probs, marks = det.detect(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    assert boxes.shape[1:] == (4,) and marks.shape[1:] == (5, 2) and len(probs) == len(boxes) > 0
    assert np.all(np.diff(probs) <= 0)  # most probable first


def test_real_face_is_found_where_dlib_finds_it():
    if not _have_weights():
        pytest.skip("facenet-pytorch's weights not installed (pip install --no-deps facenet-pytorch)")
    from pathlib import Path

    from sserd_core import media
    from sserd_core.face import detect_landmarks

    path = Path(__file__).resolve().parents[1] / "assets" / "sample.mp4"
    if not path.is_file():
        pytest.skip("assets/sample.mp4 not generated yet")
    rgb = media.picture_of(str(path))
    boxes, probs, marks = M.MTCNN().detect(rgb)
    lm = detect_landmarks(rgb)[0]
    assert probs[0] > 0.99
    eyes = np.stack([lm[36:42].mean(0), lm[42:48].mean(0)])
    assert np.linalg.norm(marks[0][:2] - eyes, axis=1).max() < 0.1 * np.linalg.norm(eyes[1] - eyes[0]) * 3
    (x1, y1, x2, y2) = boxes[0]
    assert x1 < lm[:, 0].mean() < x2 and y1 < lm[:, 1].mean() < y2
    # the official path's landmarks (found in the 256 px extract_face crop) agree with dlib's on the frame
    (off,) = M.official_landmarks([rgb])
    iod = np.linalg.norm(eyes[1] - eyes[0])
    assert np.median(np.linalg.norm(off - lm, axis=1)) < 0.1 * iod

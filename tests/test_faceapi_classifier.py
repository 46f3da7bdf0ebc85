"""The second independent expression classifier (``tests/faceapi_classifier.py``) is face-api.js's
FaceExpressionNet ported to torch: it reproduces the probabilities of the real JavaScript and sees
on the real footage what the footage shows.

Expected numbers come from JavaScript, not from the port: ``tests/data/faceapi_reference_probs.json``
was written by ``scripts/export_faceapi_classifier.py --reference``, which ran
``scripts/faceapi_reference.cjs`` (``@vladmandic/face-api`` 1.7.15 in Node, tfjs 4.22 CPU backend)
on 12 frames of the four real clips, cropped at the benchmark's Haar boxes by face-api's own
``extractFaceTensors``. What the JavaScript says there (dominant class): smile 3/3 happy, sad 3/3
sad, speaker neutral → happy → neutral (p 0.85), occluded (a hand over the mouth) fearful on two
frames and sad (0.74) on the third.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import faceapi_classifier as fc
from real_media import decode

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
BIN_SHA256 = "9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d"  # model/face_expression_model.bin


@pytest.fixture(scope="module")
def ref():
    doc = json.loads((DATA / "faceapi_reference_probs.json").read_text())
    for c in doc["clips"]:
        c["rgb"] = decode(c["file"], c["frames"])
        c["port"] = fc.classify(c["rgb"], [tuple(b) for b in c["boxes"]])
    return doc


def test_reference_is_for_these_weights_and_clips(ref):
    from safetensors import safe_open

    with safe_open(str(fc.WEIGHTS), framework="pt") as f:
        meta = f.metadata()
    assert meta["source_sha256"] == BIN_SHA256 and "@vladmandic/face-api@1.7.15" in meta["source"]
    assert "Vincent Mühler" in meta["licence"] and "Vladimir Mandic" in meta["licence"] and "MIT" in meta["licence"]
    assert "publicly available datasets" in meta["training_data"]
    assert tuple(ref["labels"]) == fc.LABELS == tuple(json.loads(meta["labels"]))
    assert ref["face_api"] == "1.7.15" and ref["backend"] == "cpu"
    for c in ref["clips"]:  # re-made clips would need a new reference (scripts/export_faceapi_classifier.py)
        assert hashlib.sha256((ROOT / c["file"]).read_bytes()).hexdigest() == c["sha256"], c["file"]


def test_port_reproduces_the_javascript_probabilities(ref):
    """Same frames, same boxes -> face-api's own probabilities within 1e-5 (measured: 4.8e-7)."""
    worst, n, unsure = 0.0, 0, 0
    for c in ref["clips"]:
        js = np.array(c["probs"])
        np.testing.assert_allclose(c["port"].sum(1), 1.0, atol=1e-5)
        worst = max(worst, float(np.abs(c["port"] - js).max()))
        n += len(js)
        unsure += int((js.max(1) < 0.99).sum())
    assert n >= 10
    assert unsure >= 3  # frames where the network is not saturated, so the comparison has teeth
    assert worst < 1e-5, worst


def test_the_javascript_reads_the_footage_as_it_looks(ref):
    by = {c["clip"]: [fc.LABELS[i] for i in np.argmax(c["probs"], 1)] for c in ref["clips"]}
    assert by["smile"] == ["happy"] * 3 and by["sad"] == ["sad"] * 3
    assert by["speaker"][0] == "neutral" and "happy" in by["speaker"]
    assert "happy" not in by["occluded"]


def test_real_footage_end_to_end_with_own_boxes():
    """RGB frames, boxes found on them (the benchmark's Haar boxes): the laugh is happy, the crying is sad."""
    smile = fc.classify(decode("assets/real/real_smile.mp4", step=9))
    sad = fc.classify(decode("assets/real/real_sad.mp4", step=6))
    h, s = fc.LABELS.index("happy"), fc.LABELS.index("sad")
    assert (smile.argmax(1) == h).mean() >= 0.8 and smile[:, h].mean() >= 0.75
    assert (sad.argmax(1) == s).mean() >= 0.8 and sad[:, s].mean() >= 0.75


def test_crop_is_face_apis_tensor_path():
    """Clipped at the borders, zero-padded to a square (odd pixel after), TF legacy bilinear resize."""
    frame = np.full((200, 300, 3), 100, np.uint8)
    out = fc.crop(frame, (250, 50, 100, 50))  # 50x50 left after clipping at x = 300
    assert out.shape == (112, 112, 3) and np.all(out == 100)
    tall = fc.crop(frame, (10, 10, 51, 112))  # 51 wide, 112 tall: 61 zero columns, 31 after, 30 before
    assert np.all(tall[:, :30] == 0) and np.all(tall[:, 30:81] == 100) and np.all(tall[:, 81:] == 0)
    # tf.image.resizeBilinear(alignCorners=false, halfPixelCenters=false): src = dst * in/out, clamped
    img = np.arange(4, dtype=np.float32).reshape(1, 4, 1).repeat(4, 0).repeat(3, 2)
    r = fc._resize_bilinear_tf(img, 8)[0, :, 0]
    np.testing.assert_allclose(r, [0, 0.5, 1, 1.5, 2, 2.5, 3, 3])
    with pytest.raises(ValueError):
        fc.crop(frame, (400, 10, 50, 50))
    with pytest.raises(ValueError):
        fc.crop(frame[..., 0], (10, 10, 50, 50))


def test_tf_same_padding_puts_the_odd_pixel_at_the_end():
    assert fc._same_pad(torch.zeros(1, 1, 112, 112), 3, 2).shape[2:] == (113, 113)
    assert fc._same_pad(torch.zeros(1, 1, 56, 56), 3, 1).shape[2:] == (58, 58)


def test_project_labels():
    from sserd_core.emotion import EMOTIONS

    assert fc.PROJECT_LABELS == EMOTIONS
    onehot = np.eye(7)
    for p, f in fc.TO_PROJECT.items():
        assert fc.to_project(onehot[fc.LABELS.index(f)])[fc.PROJECT_LABELS.index(p)] == 1.0

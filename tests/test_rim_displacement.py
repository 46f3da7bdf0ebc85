"""The rim-displacement measure (``bench/rim_displacement.py``) reads what a glasses frame did.

It is a measuring tool for the benchmark, so it is checked against moves whose size is known:
the source itself (0), a plain re-encode with the product writer's settings (codec noise only:
about 0.001 IOD), and the whole frame shifted by 3 px (3 px / IOD on every keyframe), on the
hand-traced rims of ``assets/sample_hopper.mp4`` (``assets/real/annotations/sample_hopper.json``).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HOPPER = ROOT / "assets" / "sample_hopper.mp4"


def _load():
    spec = importlib.util.spec_from_file_location("rim_displacement", ROOT / "bench" / "rim_displacement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


rd = _load()


@pytest.fixture(scope="module")
def hopper():
    ann = rd.load_annotations(rd.annotations_for(HOPPER))
    return ann, rd.decode_frames(HOPPER, list(ann["keyframes"]))


def test_annotations_cover_the_clip_and_lie_on_the_frame(hopper):
    ann, frames = hopper
    assert len(ann["keyframes"]) >= 6
    assert max(ann["keyframes"]) >= 180  # spread over the 197-frame clip, not bunched at its start
    for n, polys in ann["keyframes"].items():
        assert {"left_rim", "right_rim", "bridge"} <= set(polys)
        mask = rd.rim_mask(polys, frames[n].shape[:2], ann["line_width_px"])
        grey = frames[n].mean(2)
        # the traced pixels include the dark upper rims: darker than the face around them
        assert grey[mask].min() < 60, n
    assert ann["line_width_px"] == 2
    assert "by eye" in ann["how"]


def test_no_change_reads_zero_and_a_3px_shift_reads_3px(hopper):
    ann, frames = hopper
    assert rd.rim_displacement(frames, frames, ann)["p95_iod"] == 0.0
    r = rd.rim_displacement(frames, rd.shifted(frames, 3.0), ann)
    assert r["p95_px"] == pytest.approx(3.0, abs=0.15)
    for k in r["keyframes"].values():
        assert k["median_px"] == pytest.approx(3.0, abs=0.1)
        assert k["p95_iod"] == pytest.approx(3.0 / k["iod_px"], rel=0.06)
        assert 70 < k["iod_px"] < 100  # the portrait's eyes are ~85 px apart at 448 px


def test_a_plain_reencode_reads_codec_noise_only(hopper, tmp_path):
    ann, frames = hopper
    out = tmp_path / "re.mp4"
    rd.reencode(HOPPER, out)
    r = rd.rim_displacement(frames, rd.decode_frames(out, list(ann["keyframes"])), ann)
    assert 0.0 < r["p95_iod"] < 0.005


def test_a_move_of_the_frame_alone_is_seen_and_the_face_around_it_is_not(hopper):
    """Shift only the pixels near the rims (the frame bends) vs only pixels away from them (the face
    moves behind a still frame): the measure sees the first and not the second."""
    import cv2

    ann, frames = hopper
    near, far = {}, {}
    for n, f in frames.items():
        mask = rd.rim_mask(ann["keyframes"][n], f.shape[:2], 9)
        soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2.0)[..., None]
        moved = rd.shifted({n: f}, 0.0, 3.0)[n].astype(np.float32)
        near[n] = (f * (1 - soft) + moved * soft).round().astype(np.uint8)
        away = 1 - cv2.dilate(mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(np.float32)
        away = cv2.GaussianBlur(away, (0, 0), 2.0)[..., None]
        far[n] = (f * (1 - away) + moved * away).round().astype(np.uint8)
    assert rd.rim_displacement(frames, near, ann)["p95_px"] > 2.0
    assert rd.rim_displacement(frames, far, ann)["p95_px"] < 0.5


def test_cli_names_a_missing_annotation_file(tmp_path):
    import subprocess
    import sys

    clip = tmp_path / "someone.mp4"
    clip.write_bytes(HOPPER.read_bytes())
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "rim_displacement.py"), str(clip), str(clip)],
                       capture_output=True, text=True)
    assert p.returncode != 0
    assert "no rim annotations for someone.mp4" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1

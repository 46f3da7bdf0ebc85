"""Glasses stay rigid: the face moves behind the frame, the frame keeps its shape.

The frame's displacement is measured without the product's glasses detector: the rims of
``sample_hopper.mp4`` (a real portrait with thick cat-eye glasses, animated by this project) were
traced by eye on six keyframes (``assets/real/annotations/sample_hopper.json``), and
``bench/rim_displacement.py`` reads dense optical flow (OpenCV DIS) from the decoded source to the
decoded edit on those pixels, in inter-ocular units. A plain re-encode reads about 0.001.
Before the frame was kept rigid, happy moved the rims 0.168 and angry 0.136.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from helpers import ROOT, SAMPLE, SAMPLE_HOPPER
from real_media import real_clip_paths
from sserd_core import media, pipeline
from sserd_core.face import detect_landmarks
from sserd_core.geometry import canonical_transform
from sserd_core.landmark.glasses import find_glasses


def _rim_module():
    spec = importlib.util.spec_from_file_location("rim_displacement", ROOT / "bench" / "rim_displacement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def hopper_content():
    return pipeline.disentangle_content(pipeline.load_video(SAMPLE_HOPPER))


@pytest.mark.parametrize("label", ["happy", "sad", "angry", "surprised", "fear", "disgusted"])
def test_a_glasses_frame_keeps_its_shape(hopper_content, label, tmp_path):
    out = tmp_path / f"{label}.mp4"
    pipeline.render_face(hopper_content, pipeline.extract_emotion(label, 1.0), out)
    rim = _rim_module()
    got = rim.measure_clip(SAMPLE_HOPPER, out)
    assert got["p95_iod"] <= 0.01, f"{label}: the glasses frame moved {got['p95_iod']:.4f} IOD (p95 over its rims)"


def _amounts(path, step):
    info = media.probe_video(path)
    out = []
    for f in media.iter_frames(info):
        if f.index % step:
            continue
        lms = detect_landmarks(f.rgb)
        if lms:
            out.append(find_glasses(f.rgb, lms[0], canonical_transform(lms[0])).amount)
    return np.array(out)


def test_glasses_are_found_only_on_a_face_that_wears_them():
    worn = _amounts(SAMPLE_HOPPER, step=10)
    assert len(worn) >= 15 and (worn >= 0.5).mean() >= 0.9, f"glasses found on {np.mean(worn >= 0.5):.0%} of Hopper's frames"
    # a thin metal frame on a real face (its rims give weaker edges; its bridge is distinct)
    metal = _amounts(real_clip_paths()["glasses_metal"], step=6)
    assert len(metal) >= 15 and (metal >= 0.5).mean() >= 0.9, \
        f"the thin metal frame found on {np.mean(metal >= 0.5):.0%} of the frames"
    # the real clips less those of people in glasses (real_glasses_*: see assets/README.md)
    bare = {"astronaut": SAMPLE, **{n: p for n, p in real_clip_paths().items() if not n.startswith("glasses")}}
    for name, path in bare.items():
        amounts = _amounts(path, step=6)
        assert len(amounts) >= 8, name
        assert amounts.max() == 0.0, f"glasses found on {name}, who wears none (amount up to {amounts.max():.2f})"

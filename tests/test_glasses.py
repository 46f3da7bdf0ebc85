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


def test_a_brow_beside_a_frame_moves_as_one_piece():
    from sserd_core.expression import N_CONTROL
    from sserd_core.landmark.render import _BETWEEN_BROWS, _BROW_GROUPS, FrameRoom, _brows_held_to_room

    n = N_CONTROL  # 68 landmarks + the skin points
    src = np.full((n, 2), 50.0)
    d = np.zeros((n, 2))
    d[:, 1] = -10.0  # every point 10 px up
    rigid = np.zeros((100, 100), np.float32)
    room = FrameRoom.of(rigid, (0, 0), 1.0)
    room.room[:, :30] = 100.0  # left of x = 30 the frame is far ...
    room.room[:, 30:] = 4.0  # ... right of it, 4 px of room everywhere
    src[_BROW_GROUPS[1]] = (20.0, 50.0)  # the left brow has room ...
    out = _brows_held_to_room(src, d.copy(), room)
    # ... the right brow only moves as far as its room: 4 px, every point of it alike
    assert np.allclose(out[_BROW_GROUPS[0], 1], -4.0, atol=0.3)
    assert np.allclose(out[_BROW_GROUPS[1], 1], -10.0)
    # the skin between the brows as the more held brow; the rest of the face in full
    assert np.allclose(out[_BETWEEN_BROWS, 1], out[_BROW_GROUPS[0][0], 1])
    rest = np.setdiff1d(np.arange(n), np.r_[_BROW_GROUPS[0], _BROW_GROUPS[1], _BETWEEN_BROWS])
    assert np.allclose(out[rest, 1], -10.0)
    # a frame found half surely holds half as much; none holds nothing
    half = FrameRoom(room.room, (0, 0), 0.5)
    assert np.allclose(_brows_held_to_room(src, d.copy(), half)[_BROW_GROUPS[0], 1], -7.0, atol=0.3)
    assert np.allclose(_brows_held_to_room(src, d.copy(), None), d)


def test_a_thin_metal_frame_across_the_brows_stays_put_under_surprise(tmp_path):
    """Real footage: round wire-rimmed glasses whose rims cross the brows. Surprise raises the brows; before the
    frame was found (and the brows held as one piece) the rims moved 0.149 IOD (p95), then 0.051 with the brows'
    lower edge stretched into a dark block; now 0.020 (a re-encode: 0.0014)."""
    clip = real_clip_paths()["glasses_metal"]
    out = tmp_path / "surprised.mp4"
    pipeline.render_face(pipeline.disentangle_content(pipeline.load_video(clip)), pipeline.extract_emotion("surprised"),
                         out)
    got = _rim_module().measure_clip(clip, out)
    assert got["p95_iod"] <= 0.03, f"the wire frame moved {got['p95_iod']:.4f} IOD (p95 over its rims)"

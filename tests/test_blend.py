"""Paste-back: the feathered composite used for moved pixels against the multi-band blend."""

from __future__ import annotations

import numpy as np
from real_media import REAL_DIR

from sserd_core import blend, media, pipeline
from sserd_core.landmark.render import LandmarkEditor


def test_feathered_composite_is_the_source_outside_the_mask_and_the_edit_inside():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    mask = np.zeros((60, 80), np.float32)
    mask[10:50, 20:60] = 0.5
    mask[20:40, 30:50] = 1.0
    A = np.array([[1, 0, 40], [0, 1, 30]], np.float64)
    out = blend.paste_back(frame, crop, A, mask, colour_match=False)
    full = np.zeros(frame.shape[:2], np.float32)
    full[30:90, 40:120] = mask
    assert np.array_equal(out[full == 0], frame[full == 0])               # bit-identical outside
    inside = np.zeros_like(full, bool)
    inside[50:70, 70:90] = True
    assert np.array_equal(out[inside], crop[20:40, 30:50].reshape(-1, 3))  # the edit where the mask is 1
    half = full == 0.5
    expected = (frame[half].astype(float) + crop.reshape(-1, 3)[(mask == 0.5).ravel()]) / 2
    assert np.abs(out[half] - expected).max() <= 1.0                      # the weighted mean in between


def test_feathered_and_multiband_agree_within_a_grey_level_on_real_warped_faces(monkeypatch):
    """The quality bar: on a real clip the faster composite changes the face by <= 1 grey level on average (the
    warp's flow is zero where the mask ends, so there is no seam to hide). The renderer's own paste-back
    (``paste_back_patch``, the name it calls) is switched between the two, and the two must differ somewhere:
    a patch that missed would compare a blend with itself."""
    src = REAL_DIR / "real_speaker.mp4"
    info = pipeline.load_video(src, max_frames=8)
    track = pipeline.disentangle_content(info)
    target = pipeline.extract_emotion("angry").at(0.0)
    editor = LandmarkEditor()
    real = blend.paste_back_patch
    import sserd_core.landmark.render as render

    used = []

    def blend_with(multiband):
        def paste(*a, **k):
            used.append(multiband)
            return real(*a, **{**k, "multiband": multiband})
        return paste

    diffs, differ = [], False
    for fr in media.iter_frames(info):
        face = track.face_frame(fr.index)
        monkeypatch.setattr(render, "paste_back_patch", blend_with(True), raising=True)
        multi = editor.edit_one(fr.rgb, face, target)
        monkeypatch.setattr(render, "paste_back_patch", blend_with(False), raising=True)
        feather = editor.edit_one(fr.rgb, face, target)
        face_px = (multi != fr.rgb).any(2) | (feather != fr.rgb).any(2)
        diffs.append(np.abs(multi.astype(int) - feather.astype(int))[face_px].mean())
        differ |= bool((multi != feather).any())
    assert set(used) == {True, False}, "the renderer never called the patched paste-back"
    assert differ, "multi-band and feathered gave identical frames: the switch did not reach the renderer"
    assert max(diffs) <= 1.0, diffs

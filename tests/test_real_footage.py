"""The real-footage clips decode as declared and dlib finds the face in them.

Expected values come from the clip files as cut by ``scripts/make_real_clips.py`` (frame
counts, rates and sizes chosen there), not from project code; face detection uses dlib's
HOG detector directly.
"""
from __future__ import annotations

import av
import numpy as np
import pytest

from real_media import REAL_CLIPS, REAL_DIR

CLIPS = sorted(REAL_CLIPS)


def test_every_clip_is_present_and_small():
    total = sum(c.path.stat().st_size for c in REAL_CLIPS.values())
    assert total < 5 * 2**20, f"real clips take {total / 2**20:.1f} MiB (limit 5)"
    assert {p.name for p in REAL_DIR.glob("*.mp4")} == {c.path.name for c in REAL_CLIPS.values()}


@pytest.mark.parametrize("name", CLIPS)
def test_clip_decodes_as_declared(name):
    clip = REAL_CLIPS[name]
    with av.open(str(clip.path)) as c:
        vs = c.streams.video[0]
        assert vs.codec_context.name == "h264"
        assert (vs.codec_context.width, vs.codec_context.height) == (clip.width, clip.height)
        assert vs.average_rate == clip.fps
        n = sum(1 for _ in c.decode(video=0))
    assert n == clip.frames
    with av.open(str(clip.path)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac" and a.codec_context.sample_rate == clip.audio_rate
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    seconds = pcm.size / a.codec_context.channels / clip.audio_rate
    assert abs(seconds - clip.seconds) < 0.15, (seconds, clip.seconds)
    rms_db = 20 * np.log10(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) + 1e-12)
    if clip.speech:
        assert rms_db > -35, f"speech track too quiet: {rms_db:.0f} dBFS"
    else:
        assert rms_db < -80, f"the silent track is not silent: {rms_db:.0f} dBFS"


@pytest.mark.parametrize("name", CLIPS)
def test_dlib_finds_the_face_in_nearly_every_frame(name):
    import cv2
    import dlib

    detector = dlib.get_frontal_face_detector()
    clip = REAL_CLIPS[name]
    found = total = 0
    with av.open(str(clip.path)) as c:
        c.streams.video[0].thread_type = "AUTO"
        for frame in c.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            s = 320 / rgb.shape[0]  # detect at 320 px height: faces here are 150-300 px tall
            small = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            found += len(detector(small, 0)) >= 1
            total += 1
    assert total == clip.frames
    assert found >= 0.95 * total, f"{name}: a face in {found}/{total} frames"

"""Frames edited on several worker threads (issue 13): same file as one worker, order kept, errors stop it."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from helpers import SAMPLE

from sserd_core import media, pipeline
from sserd_core.errors import SSERDError
from sserd_core.landmark.render import LandmarkEditor


@pytest.fixture(scope="module")
def track():
    return pipeline.disentangle_content(pipeline.load_video(SAMPLE, end=1.2))


def decoded(path):
    return [f.rgb for f in media.iter_frames(media.probe_video(path))]


def test_one_and_two_workers_write_identical_files(tmp_path, track):
    a = pipeline.edit_video(track, tmp_path / "one.mp4", "angry", pipeline.EditOptions(threads=1, measure=True))
    b = pipeline.edit_video(track, tmp_path / "two.mp4", "angry", pipeline.EditOptions(threads=2, measure=True))
    assert (tmp_path / "one.mp4").read_bytes() == (tmp_path / "two.mp4").read_bytes()
    assert np.array_equal(a.render.edited_mouth, b.render.edited_mouth, equal_nan=True)
    assert a.render.n_frames == b.render.n_frames == track.n_frames
    # the source's timestamps and audio survive the parallel path
    src, out = media.probe_video(SAMPLE, end=1.2), media.probe_video(tmp_path / "two.mp4")
    assert out.n_frames == src.n_frames and out.has_audio


class _SlowFrame(LandmarkEditor):
    """Frame 3 takes much longer than the others, and every frame is stamped with its index."""

    def edit(self, frames, faces, targets):
        out = super().edit(frames, faces, targets)
        stamped = []
        for rgb, face in zip(out, faces):
            rgb = rgb.copy()
            idx = self._index_of[id(face)] if face is not None else 0
            if idx == 3:
                time.sleep(1.0)
            rgb[:8, :8] = idx * 8  # a flat patch: survives the encoder as a readable number
            stamped.append(rgb)
        return stamped


def test_frame_order_is_kept_when_one_frame_is_slow(tmp_path, track):
    editor = _SlowFrame()
    real = track.face_frame
    editor._index_of = {}

    def face_frame(i):
        f = real(i)
        if f is not None:
            editor._index_of[id(f)] = i
        return f

    track.face_frame = face_frame
    seen = []
    try:
        pipeline.render_face(track, pipeline.extract_emotion("sad"), tmp_path / "o.mp4", pipeline.EditOptions(threads=3),
                             editor=editor, frame_sink=lambda i, rgb: seen.append(i))
    finally:
        del track.face_frame
    assert seen == list(range(track.n_frames))
    assert track.found.all() and track.n_frames * 8 < 256
    stamps = [int(round(f[1:7, 1:7].mean() / 8)) for f in decoded(tmp_path / "o.mp4")]
    assert stamps == list(range(track.n_frames))


class _Failing(LandmarkEditor):
    def __init__(self, fail_after: int):
        super().__init__()
        self.calls = 0
        self.fail_after = fail_after
        self.lock = threading.Lock()

    def edit(self, frames, faces, targets):
        with self.lock:
            self.calls += 1
            n = self.calls
        if n == self.fail_after:
            raise SSERDError("backend failed on purpose")
        return super().edit(frames, faces, targets)


def test_an_error_in_a_worker_stops_the_job_and_leaves_no_file(tmp_path, track):
    editor = _Failing(fail_after=5)
    with pytest.raises(SSERDError, match="on purpose"):
        pipeline.edit_video(track, pipeline.Outputs(tmp_path / "o.mp4", side_by_side=tmp_path / "o_sbs.mp4"), "happy",
                            pipeline.EditOptions(threads=2), editor=editor)
    assert list(tmp_path.iterdir()) == []
    assert editor.calls <= 5 + 2 * 2  # nothing started after the failure beyond what was in flight


def test_an_interrupt_in_the_consumer_stops_the_workers(tmp_path, track):
    editor = _Failing(fail_after=10**9)

    def progress(stage, done, total):
        if stage == "rendering" and done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline.edit_video(track, tmp_path / "o.mp4", "happy", pipeline.EditOptions(threads=2), editor=editor,
                            progress=progress)
    calls = editor.calls
    time.sleep(0.5)
    assert editor.calls == calls and calls <= 4 + 2 * 2  # the pool is shut down, not still editing
    assert list(tmp_path.iterdir()) == []


def test_a_small_face_gets_fewer_workers(monkeypatch):
    """Workers only pay while the edit is the slower half (see pipeline.default_threads for the measurements):
    on 2 cores a 200 px face at 720p (0.04 of the frame) gets one, a 400 px face (0.16) two; more cores, more."""
    for cores, share, want in ((2, None, 2), (2, 0.04, 1), (2, 0.16, 2), (8, 0.04, 2), (8, 0.16, 4), (1, 0.5, 1)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert pipeline.default_threads(share) == want, (cores, share)

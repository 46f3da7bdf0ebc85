"""Shared fixtures: the sample clips, their content tracks and cached edits (rendered once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import SAMPLE, SAMPLE_HOPPER  # noqa: E402

from sserd_core import pipeline  # noqa: E402

CLIPS = {"astronaut": SAMPLE, "hopper": SAMPLE_HOPPER}
#: the tests edit the first 2 s of each sample clip (50 frames)
TEST_SECONDS = 2.0


@pytest.fixture(scope="session")
def content_tracks():
    cache = {}

    def get(name):
        if name not in cache:
            video = pipeline.load_video(CLIPS[name], end=TEST_SECONDS)
            cache[name] = pipeline.disentangle_content(video)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def edited(tmp_path_factory, content_tracks):
    """edited(clip, label) -> path of a video-only render of the first 2 s, cached per session."""
    out_dir = tmp_path_factory.mktemp("edits")
    cache = {}

    def get(clip, label, intensity=1.0):
        key = (clip, label, intensity)
        if key not in cache:
            path = out_dir / f"{clip}_{label}_{intensity}.mp4"
            pipeline.render_face(content_tracks(clip), pipeline.extract_emotion(label, intensity), path)
            cache[key] = path
        return cache[key]

    return get

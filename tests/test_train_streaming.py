"""Training data streamed from the cache's clip files: right frames, bounded memory, the official sampling."""

from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from sserd_core.train.data import FrameCache, clip_file, read_index
from sserd_core.train.trainer import Trainer
from train_helpers import make_synthetic_cache


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    small = make_synthetic_cache(root / "small", actors=("A1", "A2"), emotions=("neutral", "happy"), frames=6)
    big = make_synthetic_cache(root / "big", actors=("A1", "A2"), emotions=("neutral", "happy"), frames=96)
    return small, big


def test_frames_read_from_disk_equal_the_stored_ones(caches):
    _, big = caches
    data = FrameCache(big)
    assert len(data) == 2 * 2 * 96 and data.images.shape == (384, 64, 64, 3)
    stored = {c["key"]: np.load(clip_file(big, c["key"])) for c in read_index(big)["clips"]}
    rng = np.random.default_rng(0)
    idx = rng.integers(len(data), size=40)
    imgs, masks, lms = data.images[idx], data.masks[idx], data.landmarks[idx]
    for k, i in enumerate(idx):
        z = stored[data.clip_keys[data.clip_of[i]]]
        row = data.row_of[i]
        assert np.array_equal(imgs[k], z["images"][row]) and np.array_equal(masks[k], z["masks"][row])
        assert np.array_equal(lms[k], z["landmarks"][row]) and data.frame_of[i] == z["frame_index"][row]
    t = data.tensor(idx[:4])
    assert t.shape == (4, 3, 64, 64) and float(t.min()) >= -1 and float(t.max()) <= 1
    assert np.array_equal(data.images[int(idx[0])], imgs[0])


def test_memory_does_not_grow_with_the_frames(caches):
    """The index is a few bytes per frame; no crop is held. 16× the frames must not cost 16× the memory."""
    peaks = []
    for cache in caches:
        tracemalloc.start()
        data = FrameCache(cache)
        for s in range(10):
            data.tensor(np.random.default_rng(s).integers(len(data), size=8))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    n_small, n_big = 24, 384
    crops_big = n_big * 64 * 64 * 3
    assert peaks[1] < crops_big / 4, peaks  # far below holding the crops (the former FrameCache)
    assert peaks[1] < 2 * peaks[0] + 200_000, peaks  # flat in the number of frames


def test_at_most_n_random_frames_per_actor(caches):
    _, big = caches
    a = FrameCache(big, max_frames_per_actor=50, seed=1)
    b = FrameCache(big, max_frames_per_actor=50, seed=1)
    c = FrameCache(big, max_frames_per_actor=50, seed=2)
    assert [int((a.actor_of == x).sum()) for x in a.actors] == [50, 50]
    assert np.array_equal(a.row_of, b.row_of) and np.array_equal(a.clip_of, b.clip_of)  # seeded
    assert not np.array_equal(a.row_of, c.row_of)
    assert set(a.emotion_of.tolist()) == {0, 4}  # a random sample over the actor's frames, every emotion kept


def test_official_sampling_is_uniform_over_frames(tmp_path):
    # A1 has 3x the frames of A2: the official sampler draws A1's frames 3/4 of the time; "actors" draws 1/2
    make_synthetic_cache(tmp_path / "a", actors=("A1",), emotions=("neutral", "happy"), frames=12)
    cache = make_synthetic_cache(tmp_path / "b", actors=("A1", "A2"), emotions=("neutral", "happy"), frames=4)
    import shutil

    for f in (tmp_path / "a" / "clips").iterdir():  # replace A1's clips by the longer ones
        shutil.copy(f, tmp_path / "b" / "clips" / f.name)
    idx = read_index(cache)
    from sserd_core.train.data import write_index

    write_index(cache, {k: v for k, v in idx.items() if k != "clips"},
                [dict(c, frames=12 if c["actor"] == "A1" else 4) for c in idx["clips"]])
    data = FrameCache(cache)
    share = {}
    for sampling in ("frames", "actors"):
        fake = SimpleNamespace(cfg=SimpleNamespace(data={"sampling": sampling}))
        batch = Trainer.batch_same_emotion(fake, np.random.default_rng(0), data, 2000)
        share[sampling] = np.mean([a == "A1" for a in batch["actors"]])
    assert share["frames"] == pytest.approx(0.75, abs=0.04) and share["actors"] == pytest.approx(0.5, abs=0.04)

"""`sserd preprocess` on tiny generated datasets in the MEAD, RAVDESS and plain layouts (real face clips)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from sserd_core.errors import SSERDError
from sserd_core.cli import main as train_cli
from sserd_core.train.data import FrameCache, discover_clips, split_actors
from sserd_core.train.preprocess import preprocess

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two ~0.5 s clips cut from the sample assets with sserd_core.media (12 frames each, 448 px)."""
    from sserd_core.media import VideoWriter, iter_frames, probe_video

    d = tmp_path_factory.mktemp("clips")
    out = []
    for name, start in (("sample.mp4", 1.0), ("sample_hopper.mp4", 2.0)):
        info = probe_video(ROOT / "assets" / name, start=start, end=start + 0.5)
        path = d / name
        with VideoWriter(str(path), info.width, info.height, info.fps, preset="ultrafast") as w:
            for f in iter_frames(info):
                w.write(f.rgb, f.time)
        out.append(path)
    return out


def place(root: Path, rel: str, src: Path):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, p)


def make_layout(root: Path, layout: str, a: Path, b: Path):
    if layout == "mead":
        place(root, "M003/video/front/happy/level_1/001.mp4", a)
        place(root, "M003/video/front/neutral/level_1/001.mp4", b)
        place(root, "W009/video/front/sad/level_3/002.mp4", b)
        place(root, "M003/video/left_30/happy/level_1/001.mp4", a)      # other view: skipped by default
        place(root, "M003/video/front/contempt/level_1/001.mp4", a)     # not one of SSERD's 7: skipped
        return {("M003", "happy"), ("M003", "neutral"), ("W009", "sad")}
    if layout == "ravdess":
        place(root, "Actor_01/01-01-03-01-01-01-01.mp4", a)              # AV speech, happy
        place(root, "Actor_01/02-01-01-01-02-01-01.mp4", b)              # video-only speech, neutral
        place(root, "Actor_02/01-01-05-02-01-01-02.mp4", b)              # angry
        place(root, "Actor_02/01-01-02-01-01-01-02.mp4", a)              # calm: skipped
        return {("Actor_01", "happy"), ("Actor_01", "neutral"), ("Actor_02", "angry")}
    place(root, "anna/happy/take1.mp4", a)
    place(root, "anna/Neutral/take2.mp4", b)                             # case / alias tolerant
    place(root, "ben/surprise/x.mp4", b)                                 # alias → surprised
    place(root, "ben/notes.txt", a)                                      # not a video: ignored
    return {("anna", "happy"), ("anna", "neutral"), ("ben", "surprised")}


@pytest.mark.parametrize("layout", ["mead", "ravdess", "plain"])
def test_preprocess_each_layout(layout, clips, tmp_path):
    root = tmp_path / layout
    expected = make_layout(root, layout, *clips)
    found, skipped = discover_clips(root, layout)
    assert {(c.actor, c.emotion) for c in found} == expected
    assert skipped == {"mead": {"view left_30": 1, "emotion contempt": 1}, "ravdess": {"emotion calm": 1},
                       "plain": {}}[layout]
    cache = tmp_path / "cache"
    workers = 2 if layout == "plain" else 1          # the plain layout runs through the process pool
    seen = []
    index = preprocess(root, cache, layout, size=SIZE, stride=2, max_frames=4, workers=workers, show_bar=False,
                       progress=lambda s, d, t: seen.append((d, t)))
    assert seen[-1] == (3, 3)
    assert {(c["actor"], c["emotion"]) for c in index["clips"]} == expected
    assert all(c["status"] == "ok" and c["frames"] == 4 for c in index["clips"]), index["clips"]
    data = FrameCache(cache)
    assert data.images.shape == (12, SIZE, SIZE, 3) and data.masks.shape == (12, SIZE, SIZE)
    assert set(data.frame_of.tolist()) == {0, 2, 4, 6}                # every 2nd frame
    # crops are aligned as inference aligns them: landmarks on the SSERD template in the official (zoomed) crop
    from sserd_core.neural import template_in_crop

    err = np.linalg.norm(data.landmarks - template_in_crop(SIZE), axis=-1).mean()
    assert err < 2.0, err
    # the mask covers the face centre, not the corners
    assert data.masks[:, SIZE // 2, SIZE // 2].min() > 200 and data.masks[:, 0, 0].max() < 30
    # split by actor: no actor on both sides
    train, val = split_actors(data.actors, val_fraction=0.5)
    assert len(val) == 1 and not set(train) & set(val)


def test_preprocess_resumes_and_refuses_mixed_settings(clips, tmp_path):
    root = tmp_path / "plain"
    make_layout(root, "plain", *clips)
    cache = tmp_path / "cache"
    preprocess(root, cache, "plain", size=SIZE, stride=3, max_frames=2, show_bar=False)
    files = sorted((cache / "clips").glob("*.npz"))
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    # an interrupted run: one clip's file missing (never written: files are renamed into place when complete)
    files[0].unlink()
    done = []
    preprocess(root, cache, "plain", size=SIZE, stride=3, max_frames=2, show_bar=False,
               progress=lambda s, d, t: done.append(d))
    assert done == [3]                                                  # 2 reused, 1 redone
    assert all(f.stat().st_mtime_ns == mtimes[f] for f in files[1:])
    assert files[0].is_file() and not list((cache / "clips").glob("*partial*"))
    with pytest.raises(SSERDError, match="other settings.*size"):
        preprocess(root, cache, "plain", size=96, stride=3, max_frames=2, show_bar=False)


def test_preprocess_cli_and_errors(clips, tmp_path, capsys):
    root = tmp_path / "ravdess"
    make_layout(root, "ravdess", *clips)
    rc = train_cli(["preprocess", str(root), str(tmp_path / "c"), "--layout", "ravdess", "--size", "64",
                    "--max-frames", "1", "--workers", "1", "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and "3/3 clips with a face, 3 frames, 2 actors" in out and "skipped 1 file(s): emotion calm" in out
    assert train_cli(["preprocess", str(tmp_path / "missing"), str(tmp_path / "c2"), "--layout", "plain"]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert train_cli(["preprocess", str(tmp_path / "empty"), str(tmp_path / "c3"), "--layout", "mead"]) == 1
    assert "No mead clips found" in capsys.readouterr().err

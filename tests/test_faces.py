"""A different emotion for each face: the per-face targets (EditOptions.faces, ``--face-target``), tracking
several faces in one pass, and the render that edits each face on its own track.

Measured on the generated two-face clip (Grace Hopper large on the left, the astronaut halved on the right,
:func:`helpers.two_face_clip`) with the classifier-independent landmark measure: landmarks fitted afresh on
each face's region of the decoded output, against the same fit on the source."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import (ROOT, SAMPLE, SMALL_FACE_BOX, feature, features, frames, landmarks_in, two_face_clip)

from sserd_core import media, pipeline
from sserd_core.errors import NoFaceError, SSERDError
from sserd_core.media import Patch
from sserd_core.pipeline.faces import FaceEdit, FaceTarget, face_targets, parse_face_targets

BIG_BOX = (0, 0, 448, 448)
BLANK = set(range(10, 18))  # the frames of the clip with a face leaving where the small face is gone


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("two_faces")
    return {"two": two_face_clip(d / "two.mp4", end=1.2, audio=SAMPLE),
            "leaving": two_face_clip(d / "leaving.mp4", end=1.2, blank=BLANK)}


@pytest.fixture(scope="module")
def both(clips, tmp_path_factory):
    """Face 0 happy, face 1 sad, through the API (with audio)."""
    out = tmp_path_factory.mktemp("both") / "both.mp4"
    return pipeline.edit(clips["two"], out, pipeline.EditOptions(emotion="happy", faces=("1=sad",), measure=True))


# ------------------------------------------------------------------ the targets


def test_face_target_forms_and_their_errors():
    assert FaceTarget.parse("1=sad@0.5") == FaceTarget(1, emotion="sad", intensity=0.5)
    assert FaceTarget.parse(" 0 = Joy ") == FaceTarget(0, emotion="Joy")
    assert FaceTarget.parse("2=reference:dir/a:b.png").reference == "dir/a:b.png"
    assert FaceTarget.parse("1=curve:0:neutral,2:happy@0.9").curve == "0:neutral,2:happy@0.9"
    assert parse_face_targets("0=happy; 1=curve:0:sad,1:happy\n2=fear@0.3") == (
        FaceTarget(0, emotion="happy"), FaceTarget(1, curve="0:sad,1:happy"), FaceTarget(2, emotion="fear",
                                                                                             intensity=0.3))
    for t in ("1=sad@0.5", "0=happy", "1=curve:0:neutral,2:happy@0.9", "3=reference:x.png"):
        assert FaceTarget.parse(t).text() == t
    bad = {"1-sad": "Cannot read the face target '1-sad'", "x=sad": "Cannot read", "1=": "Cannot read",
           "1=sadd": "Face 1's target: Unknown emotion 'sadd'", "1=sad@x": "must be a number from 0 to 1, got 'x'",
           "1=sad@2": "Face 1's target: The intensity must be between 0 and 1, got 2",
           "1=smile:0.5": "Unknown kind of face target 'smile'"}
    for text, msg in bad.items():
        with pytest.raises(SSERDError, match=msg.replace("(", r"\(").replace(")", r"\)")) as e:
            pipeline.EditOptions(faces=(text,))
        assert "\n" not in str(e.value)
    with pytest.raises(SSERDError, match="Face 1's target: Give only one of"):
        FaceTarget(1, emotion="sad", curve="0:happy")


def test_faces_in_edit_options():
    o = pipeline.EditOptions(emotion="happy", faces=("1=sad@0.5", FaceTarget(2, curve="0:fear")))
    assert face_targets(o) == (FaceTarget(0, emotion="happy"), FaceTarget(1, emotion="sad", intensity=0.5),
                               FaceTarget(2, curve="0:fear"))
    assert face_targets(pipeline.EditOptions(faces="1=sad")) == (FaceTarget(1, emotion="sad"),)
    assert face_targets(pipeline.EditOptions(emotion="sad", face_index=1)) == (FaceTarget(1, emotion="sad"),)
    assert pipeline.EditOptions().faces == () and pipeline.EditOptions.defaults()["faces"] == ()
    with pytest.raises(SSERDError, match="Face 0 is given two targets"):
        pipeline.EditOptions(emotion="happy", faces=("0=sad",))
    with pytest.raises(SSERDError, match="Face 1 is given two targets"):
        pipeline.EditOptions(faces=("1=sad", "1=happy"))
    with pytest.raises(SSERDError, match="face_index 2 has no target of its own"):
        pipeline.EditOptions(face_index=2, faces=("1=sad",))
    with pytest.raises(SSERDError, match="A face target must be"):
        pipeline.EditOptions(faces=(1,))
    # a reference clip's sync comes from the options
    assert pipeline.EditOptions(sync="index", faces=("1=reference:clip.mp4",)).faces[0].sync == "index"


def test_patches_merge_into_one_over_the_source():
    rng = np.random.default_rng(0)
    src = rng.integers(0, 255, (40, 60, 3), np.uint8)
    a = Patch(src, np.full((10, 10, 3), 1, np.uint8), 5, 5)
    b = Patch(a.apply(), np.full((8, 6, 3), 2, np.uint8), 40, 20)
    merged = a.then(b)
    assert merged.frame is src and merged.box == (5, 5, 46, 28)
    assert np.array_equal(merged.apply(), b.apply())
    assert a.then(Patch(a.apply())) is a
    c = Patch(src).then(Patch(src, np.zeros((4, 4, 3), np.uint8), 1, 1))
    assert c.frame is src and c.box == (1, 1, 5, 5)


# ------------------------------------------------------------------ the edit


def test_each_face_shows_its_own_emotion(clips, both):
    """Face 0 happy (lip corners up, mouth wider), face 1 sad (inner brows up, corners down), each measured
    on its own region of the decoded output; audio and frame count kept."""
    out = both.output
    assert both.has_audio and both.render.n_frames == 30
    assert [f.face_index for f in both.faces] == [0, 1] and both.content.face_index == 0
    assert [f.face_index for f in both.render.faces] == [0, 1]
    a, b = media.read_audio(clips["two"]), media.read_audio(out)
    assert a.sample_rate == b.sample_rate and np.allclose(a.waveform, b.waveform[:, :a.waveform.shape[1]], atol=1e-4)
    big = np.nanmean(features(landmarks_in(out, BIG_BOX)) - features(landmarks_in(clips["two"], BIG_BOX)), 0)
    small = np.nanmean(features(landmarks_in(out, SMALL_FACE_BOX, upscale=2))
                       - features(landmarks_in(clips["two"], SMALL_FACE_BOX, upscale=2)), 0)
    big, small = big[None], small[None]
    assert feature("lip_corner", big)[0] > 0.02 and feature("mouth_width", big)[0] > 0.06, big
    assert feature("inner_brow", small)[0] > 0.04 and feature("lip_corner", small)[0] < -0.015, small
    assert feature("mouth_width", small)[0] < 0, small


def test_each_face_is_edited_on_its_own_track(clips):
    """Frame for frame, the two-face render is the single-face renders put together: the large face's region as
    face 0 edited alone, the small face's as face 1 edited alone (their boxes do not overlap here)."""
    video = pipeline.load_video(clips["two"], end=0.6)
    t0, t1 = pipeline.disentangle_faces(video, [0, 1])
    assert t0.face_index == 0 and t1.face_index == 1 and t0.found.all() and t1.found.all()
    alone = [pipeline.disentangle_content(video, face_index=i) for i in (0, 1)]
    for t, a in zip((t0, t1), alone):
        assert np.allclose(t.landmarks, a.landmarks, atol=1e-3), "one pass for two faces tracks each as alone"
    happy, sad = pipeline.extract_emotion("happy"), pipeline.extract_emotion("sad")
    got = {}
    for name, args in {"both": (t0, happy, [FaceEdit(t1, sad)]), "0": (t0, happy, []), "1": (t1, sad, [])}.items():
        got[name] = []
        pipeline.render_face(args[0], args[1], clips["two"].with_name(f"r{name}.mp4"), other_faces=args[2],
                             frame_sink=lambda i, rgb, g=got[name]: g.append(rgb))
    src = frames(clips["two"])
    for i, (both, one, two) in enumerate(zip(got["both"], got["0"], got["1"])):
        assert np.array_equal(both[:, :448], one[:, :448]), i
        assert np.array_equal(both[:, 448:], two[:, 448:]), i
        assert np.array_equal(one[:, 448:], src[i][:, 448:]) and np.array_equal(two[:, :448], src[i][:, :448])
    assert len(got["both"]) == 15
    assert sum(not np.array_equal(g[:, 448:], s[:, 448:]) for g, s in zip(got["both"], src)) > 10


def test_only_the_targeted_face_changes(clips, tmp_path):
    """faces=('1=sad',) alone: only face 1 is tracked and edited — the same file as the single-face edit of face 1."""
    a = pipeline.edit(clips["two"], tmp_path / "a.mp4", pipeline.EditOptions(faces=("1=sad",), end=0.6))
    b = pipeline.edit(clips["two"], tmp_path / "b.mp4", pipeline.EditOptions(emotion="sad", face_index=1, end=0.6))
    fa, fb = frames(a.output), frames(b.output)
    assert len(fa) == len(fb) == 15 and all(np.array_equal(x, y) for x, y in zip(fa, fb))


def test_a_face_that_leaves_lets_the_others_be_edited(clips):
    """The small face is gone on frames 10..17: its track is lost there (never re-acquired as the large face), the
    large face is still edited on those frames, the small face's region stays as it is, and every frame is kept."""
    video = pipeline.load_video(clips["leaving"])
    t0, t1 = pipeline.disentangle_faces(video, [0, 1])
    assert t0.found.all(), np.flatnonzero(~t0.found)
    assert not t1.found[sorted(BLANK)].any() and t1.found[:8].all() and t1.found[-8:].all()
    lm1 = t1.landmarks[t1.found]
    assert (lm1[:, :, 0] > 448).all(), "face 1's track stays on the small face"
    got = []
    result = pipeline.render_face(t0, pipeline.extract_emotion("happy"), clips["leaving"].with_name("l.mp4"),
                                  other_faces=[FaceEdit(t1, pipeline.extract_emotion("sad"))],
                                  frame_sink=lambda i, rgb: got.append(rgb))
    src = frames(clips["leaving"])
    assert result.n_frames == len(got) == len(src) == 30
    for i in sorted(BLANK):
        assert not np.array_equal(got[i][:, :448], src[i][:, :448]), f"frame {i}: face 0 must still be edited"
        assert np.array_equal(got[i][:, 448:], src[i][:, 448:]), f"frame {i}: face 1 is gone, nothing to edit"
    assert not np.array_equal(got[5][:, 448:], src[5][:, 448:])


def test_a_face_index_that_is_not_there_is_named(clips, tmp_path):
    with pytest.raises(NoFaceError, match=r"Face index 2 asked for, but the first frame with faces has only 2 "):
        pipeline.edit(clips["two"], tmp_path / "x.mp4", pipeline.EditOptions(emotion="happy", faces=("2=sad",)))
    assert not (tmp_path / "x.mp4").exists()


def test_a_backend_with_one_face_per_job_is_refused(clips):
    from sserd_core.landmark.render import LandmarkEditor

    class OneAtATime(LandmarkEditor):
        name = "one-at-a-time"
        parallel_safe = False

    with pytest.raises(SSERDError, match="The one-at-a-time backend edits one face per job"):
        pipeline.edit(clips["two"], clips["two"].with_name("n.mp4"), pipeline.EditOptions(faces=("0=happy", "1=sad")),
                      editor=OneAtATime(), progress=lambda *a: pytest.fail("refused before anything is decoded"))
    video = pipeline.load_video(clips["two"], end=0.2)
    t0, t1 = pipeline.disentangle_faces(video, [0, 1])
    with pytest.raises(SSERDError, match="The one-at-a-time backend edits one face per job"):
        pipeline.render_face(t0, pipeline.extract_emotion("happy"), clips["two"].with_name("n.mp4"),
                             editor=OneAtATime(), other_faces=[FaceEdit(t1, pipeline.extract_emotion("sad"))])
    other = pipeline.disentangle_content(pipeline.load_video(clips["two"], end=0.4), face_index=1)
    with pytest.raises(SSERDError, match="track every face on the same video"):
        pipeline.render_face(t0, pipeline.extract_emotion("happy"), clips["two"].with_name("n.mp4"),
                             other_faces=[FaceEdit(other, pipeline.extract_emotion("sad"))])


def test_every_kind_of_target_per_face(clips, tmp_path):
    """A reference image for face 0 and a curve for face 1, in one job: each face gets its own kind of target."""
    from helpers import ASTRONAUT_FACE

    result = pipeline.edit(clips["two"], tmp_path / "kinds.mp4", pipeline.EditOptions(
        faces=(f"0=reference:{ASTRONAUT_FACE}", "1=curve:0:neutral,0.4:sad"), end=0.6, measure=True))
    assert [f.emotion.source for f in result.faces] == ["reference", "curve"]
    face1 = result.render.faces[1]
    assert face1.target[0][0] == 1.0 and face1.target[-1][5] == 1.0  # neutral at 0 s, sad from 0.4 s
    assert result.render.n_frames == 15


def test_cli_face_target(clips, both, tmp_path):
    """``--face-target`` gives the API's frames; a bad form is one ``error:`` line."""
    out = tmp_path / "cli.mp4"
    run = subprocess.run([sys.executable, "-m", "sserd_core.cli", "edit", str(clips["two"]), "-o", str(out),
                          "--emotion", "happy", "--face-target", "1=sad"],
                         capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert run.returncode == 0, run.stderr
    assert "face 0: happy 1.00; face 1: sad 1.00" in run.stderr
    assert all(np.array_equal(x, y) for x, y in zip(frames(out), frames(both.output)))
    bad = subprocess.run([sys.executable, "-m", "sserd_core.cli", "edit", str(clips["two"]), "-o", str(tmp_path / "b.mp4"),
                          "--face-target", "1:sad"], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error: Cannot read")
    assert "--face-target N=TARGET" in subprocess.run([sys.executable, "-m", "sserd_core.cli", "edit", "--help"],
                                                      capture_output=True, text=True, cwd=str(ROOT)).stdout


def test_two_real_people_side_by_side(tmp_path):
    """Real footage: no filmed clip of two people with a clear licence is reachable here (assets/README.md), so two
    real clips of two different people are composed side by side in one frame — the laughing woman
    (``real_smile``, left) and the man (``real_speaker``, scaled to the same height, right, with his clip's
    audio). Face 0 (the woman, the larger face) to neutral, face 1 (the man) to happy: each face's own region
    moves as asked, measured on landmarks fitted afresh on each half of the output."""
    import cv2
    from real_media import REAL_CLIPS

    from helpers import write_clip

    left = frames(REAL_CLIPS["smile"].path)[:48]
    right = frames(REAL_CLIPS["speaker"].path)[:48]
    composed = [(np.concatenate([a, cv2.resize(b, (640, 360), interpolation=cv2.INTER_AREA)], 1), i / 24)
                for i, (a, b) in enumerate(zip(left, right))]
    src = write_clip(tmp_path / "two_people.mp4", composed, (1280, 360), fps=24, audio=REAL_CLIPS["speaker"].path)
    result = pipeline.edit(src, tmp_path / "out.mp4", pipeline.EditOptions(faces=("0=neutral", "1=happy")))
    assert result.has_audio and result.render.n_frames == 48
    assert (result.faces[0].content.landmarks[..., 0] < 640).all() and (result.faces[1].content.landmarks[..., 0] > 640).all()
    woman, man = ((0, 0, 640, 360), 1), ((640, 0, 1280, 360), 2)
    change = {}
    for name, (box, up) in {"woman": woman, "man": man}.items():
        change[name] = np.nanmean(features(landmarks_in(result.output, box, up))
                                  - features(landmarks_in(src, box, up)), 0)[None]
    assert feature("lip_corner", change["woman"])[0] < -0.01 and feature("mouth_width", change["woman"])[0] < -0.03, \
        change["woman"]
    assert feature("lip_corner", change["man"])[0] > 0.01 and feature("mouth_width", change["man"])[0] > 0.03, \
        change["man"]


def test_expression_controls_per_face(clips, tmp_path):
    """A face's target can carry expression controls, alone (on that face's own expression) or on a label; the
    text forms read back, a bad control is named with its face, and the controls move only their face: the other
    face is the same as in the edit without them."""
    assert FaceTarget.parse("1=controls:smile=-0.5").controls == "smile=-0.5"
    t = FaceTarget.parse("1=sad@0.5 + controls:brow_lower=-0.3")
    assert (t.emotion, t.intensity, t.controls) == ("sad", 0.5, "brow_lower=-0.3")
    for text in ("1=controls:smile=-0.5", "1=sad@0.5 + controls:brow_lower=-0.3",
                 "1=controls:0: smile=0; 1: smile=1"):
        assert FaceTarget.parse(text).text() == text
    assert parse_face_targets("0=happy; 1=controls:0: smile=0; 1: smile=1") == (
        FaceTarget(0, emotion="happy"), FaceTarget(1, controls="0: smile=0; 1: smile=1"))
    with pytest.raises(SSERDError, match=r"Face 1's target: Unknown expression control 'smil'"):
        pipeline.EditOptions(faces=("1=controls:smil=1",))
    with_ctl = pipeline.edit(clips["two"], tmp_path / "c.mp4", pipeline.EditOptions(
        faces=("0=happy", "1=controls:brow_inner=1, corners_down=1"), end=0.6))
    without = pipeline.edit(clips["two"], tmp_path / "n.mp4", pipeline.EditOptions(faces=("0=happy",), end=0.6))
    a, b = frames(with_ctl.output), frames(without.output)
    x0, y0, x1, y1 = SMALL_FACE_BOX
    assert len(a) == len(b) == 15
    # (the encoder's rate control spreads a change anywhere over the frame a little: mean, not exact)
    left = max(float(np.abs(p[:, :x0 - 8].astype(int) - q[:, :x0 - 8]).mean()) for p, q in zip(a, b))
    assert left < 1.0, f"face 0 changed by {left:.2f} grey levels on average"
    assert any(np.abs(p[y0:y1, x0:x1].astype(int) - q[y0:y1, x0:x1]).max() > 20 for p, q in zip(a, b)), \
        "face 1's controls changed nothing"

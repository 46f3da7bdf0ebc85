"""Edit strength on real footage: every emotion moves the face the way that emotion does.

Clips: ``assets/real/`` (real people the project did not film; see tests/real_media.py).
Every measurement re-detects the face and its 68 landmarks afresh on the *decoded output
video* (tests/helpers.redetect) and compares with the same measurement on the source clip;
nothing here reads the editor's own targets. Distances are in units of the inter-ocular
distance (IOD, the distance between the eye centres, ~6 cm on an adult): 0.03 IOD ≈ 2 mm.

Measured here (intensity 1): ``speaker`` frames 0-0.6 s, where the man's face is at rest,
so each emotion's own action units show; ``smile`` (a woman laughing with her teeth showing)
for "neutral", which must take the laugh away. Margins are about half of what the edit
produces and several times the frame-to-frame landmark noise of a re-encoded source.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import feature, features, frames, mouth_openings, redetect
from real_media import REAL_CLIPS, SMILING

from sserd_core import pipeline
from sserd_core.face import detect_landmarks, face_embedding

SPEAKER = REAL_CLIPS["speaker"].path
REST_END = 0.6  # seconds: the speaker's face is at rest (mouth closed, no smile) until ~0.6 s


@pytest.fixture(scope="module")
def real_track():
    cache = {}

    def get(name, end=None):
        if (name, end) not in cache:
            cache[name, end] = pipeline.disentangle_content(pipeline.load_video(REAL_CLIPS[name].path, end=end))
        return cache[name, end]

    return get


@pytest.fixture(scope="module")
def real_edit(tmp_path_factory, real_track):
    """real_edit(clip, label, intensity, end) -> path of a video-only render, cached per module."""
    out_dir = tmp_path_factory.mktemp("real_edits")
    cache = {}

    def get(name, label, intensity=1.0, end=None):
        key = (name, label, intensity, end)
        if key not in cache:
            path = out_dir / f"{name}_{label}_{intensity}_{end}.mp4"
            pipeline.render_face(real_track(name, end), pipeline.extract_emotion(label, intensity), path)
            cache[key] = path
        return cache[key]

    return get


def _mean_features(path, end=None):
    return np.nanmean(features(redetect(path, end=end)), 0)


@pytest.fixture(scope="module")
def speaker_rest_source():
    return _mean_features(SPEAKER, end=REST_END)


def _delta(real_edit, source_feats, label, intensity=1.0):
    return _mean_features(real_edit("speaker", label, intensity, REST_END)) - source_feats


# (emotion, [(feature, sign, margin in IOD)]): sign +1 = must rise by more than the margin.
# Feature meanings (sserd_core.expression.emotion_features): inner/outer_brow = brow height
# above the eye line; brow_gap = distance between the inner brow ends; upper_lid = how far the
# upper lids rise above the eye corners (eye opening); lower_lid = lower lids raised; nose_wing
# = nose wings raised; lip_corner = mouth corners above the middle of the lips; mouth_width;
# upper_lip = upper lip raised towards the nose.
DIRECTIONS = [
    ("happy", [("lip_corner", +1, .04), ("mouth_width", +1, .08), ("lower_lid", +1, .01)]),
    ("sad", [("inner_brow", +1, .04), ("lip_corner", -1, .04)]),
    ("angry", [("inner_brow", -1, .04), ("mouth_width", -1, .03)]),
    ("surprised", [("inner_brow", +1, .06), ("outer_brow", +1, .06), ("upper_lid", +1, .01)]),
    ("fear", [("inner_brow", +1, .05), ("outer_brow", +1, .04), ("mouth_width", +1, .025)]),
    # (disgust's upper-lip raise is held by the lips' height bound: the inner lip's centre is the speech and
    # stays, so raising the outer edge would only swell the lip; the nose, the brows and the corners carry it)
    ("disgusted", [("nose_wing", +1, .02), ("inner_brow", -1, .03), ("lip_corner", -1, .012)]),
]


@pytest.mark.parametrize("label,checks", DIRECTIONS, ids=[d[0] for d in DIRECTIONS])
def test_each_emotion_moves_a_real_face_its_own_way(real_edit, speaker_rest_source, label, checks):
    d = _delta(real_edit, speaker_rest_source, label)
    for name, sign, margin in checks:
        value = float(feature(name, d[None])[0])
        assert sign * value > margin, (f"{label}: {name} changed by {value:+.3f} IOD, expected "
                                       f"{'+' if sign > 0 else '-'}{margin} or more")


@pytest.mark.parametrize("label", [d[0] for d in DIRECTIONS])
def test_intensity_is_monotonic(real_edit, speaker_rest_source, label):
    """0 leaves a face at rest as it is; 0.5 lands between 0 and 1 (on the emotion's main feature)."""
    name, sign, margin = dict(DIRECTIONS)[label][0]
    i = [feature(name, _delta(real_edit, speaker_rest_source, label, a)[None])[0] * sign for a in (0.0, 0.5, 1.0)]
    assert abs(i[0]) < 0.25 * margin, f"{label} at intensity 0 moved {name} by {i[0]:+.3f} IOD"
    assert 0.2 * i[2] < i[1] < 0.85 * i[2], f"{label}: {name} at 0 / 0.5 / 1 = {np.round(i, 3)}"


# (clip, target, the class to read, classifier, its least change at intensity 1): two independent pretrained
# classifiers trained on different data (fer's mini-Xception on FER2013, tests/expression_classifier.py, and
# face-api.js's expression net, tests/faceapi_classifier.py — neither part of the product, never used to make
# an edit) on the whole clip, faces located once on the source and the edit cropped with the same boxes.
# Margins are about half of what the benchmark measures on these edits (bench/results/edit_strength.md: speaker
# happy fer +0.09, sad fer +0.46 / face-api +0.15; laughing clip sad fer +0.34, neutral fer −0.07; crying clip
# happy fer +0.43 / face-api +0.23; hand-over-mouth disgusted face-api +0.84), so they fail when an emotion
# stops reading as itself, not on noise. "neutral" on the laughing clip: the drop of p(happy). Emotions that
# neither classifier reads from a believable edit of these faces (anger from lowered brows and narrowed
# lids, surprise and fear on the speaker) are checked by landmarks above (docs/EDIT_QUALITY.md).
CLASSIFIER_CHECKS = [
    ("speaker", "happy", "happy", "fer", 0.04),
    ("speaker", "sad", "sad", "fer", 0.20),
    ("speaker", "sad", "sad", "faceapi", 0.07),
    (SMILING, "neutral", "happy", "fer", -0.025),
    (SMILING, "sad", "sad", "fer", 0.15),
    ("sad", "happy", "happy", "fer", 0.20),
    ("sad", "happy", "happy", "faceapi", 0.10),
    ("occluded", "disgusted", "disgusted", "faceapi", 0.40),
]


@pytest.fixture(scope="module")
def classified_source():
    classifier = pytest.importorskip("expression_classifier")
    cache = {}

    def get(name):
        if name not in cache:
            src = frames(REAL_CLIPS[name].path, step=2)
            boxes = classifier.find_boxes(src)
            cache[name] = (boxes, classifier.to_project(classifier.classify(src, boxes)))
        return cache[name]

    return get


@pytest.mark.parametrize("clip,label,reads,which,margin", CLASSIFIER_CHECKS,
                         ids=[f"{c}-{t}-{w}" for c, t, _, w, _ in CLASSIFIER_CHECKS])
def test_an_independent_classifier_reads_the_target_emotion(real_edit, classified_source, clip, label, reads, which,
                                                           margin):
    import importlib

    from expression_classifier import PROJECT_LABELS

    classifier = importlib.import_module("expression_classifier" if which == "fer" else "faceapi_classifier")
    boxes, _ = classified_source(clip)
    p_src = classifier.to_project(classifier.classify(frames(REAL_CLIPS[clip].path, step=2), boxes))
    out = frames(real_edit(clip, label), step=2)
    assert len(out) == len(boxes), (len(out), len(boxes))
    p_out = classifier.to_project(classifier.classify(out, boxes))
    k = PROJECT_LABELS.index(reads)
    change = float(p_out[:, k].mean() - p_src[:, k].mean())
    if margin > 0:
        assert change > margin, f"{clip} → {label}: {which} p({reads}) rose by {change:+.3f}, expected > {margin}"
    else:
        assert change < margin, f"{clip} → {label}: {which} p({reads}) changed by {change:+.3f}, expected < {margin}"


def _teeth_area(path, box, end=None):
    """Mean count of bright, colourless pixels (teeth) in a fixed mouth box, per frame."""
    x0, y0, x1, y1 = box
    counts = []
    for rgb in frames(path, end=end, step=2):
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
        counts.append(int(((hsv[..., 2] > 200) & (hsv[..., 1] < 40)).sum()))
    return float(np.mean(counts))


def test_neutral_takes_the_laugh_away(real_edit, real_track):
    """The laughing woman edited to neutral: narrower mouth, corners down, less teeth showing.

    Her lips stay apart as they were (speech), so the teeth between them can only shrink with
    the mouth's width (teeth area ≈ lip gap × width): the teeth must shrink at least as much
    as the re-detected width does. (Hiding more meant bending the open lips over the teeth,
    which bent the teeth too and moved dlib's inner-lip fit off the speech.)"""
    track = real_track(SMILING)
    assert track.source_emotion[:, 4].mean() > 0.3, "the laughing clip should be measured as happy"
    src = _mean_features(REAL_CLIPS[SMILING].path)
    out = real_edit(SMILING, "neutral")
    d = _mean_features(out) - src
    assert feature("mouth_width", d[None])[0] < -0.06, d
    assert feature("lip_corner", d[None])[0] < -0.02, d
    width_ratio = 1.0 + feature("mouth_width", d[None])[0] / feature("mouth_width", src[None])[0]
    lm = track.landmarks[track.found][:, 48:68]
    (x0, y0), (x1, y1) = np.nanmin(lm, (0, 1)).astype(int) - 6, np.nanmax(lm, (0, 1)).astype(int) + 6
    teeth_src = _teeth_area(REAL_CLIPS[SMILING].path, (x0, y0, x1, y1))
    teeth_out = _teeth_area(out, (x0, y0, x1, y1))
    assert teeth_out < width_ratio * teeth_src, (f"teeth pixels {teeth_src:.0f} -> {teeth_out:.0f}, mouth width "
                                                 f"x{width_ratio:.2f}: the laugh stays")


def test_speech_is_kept_on_the_speaking_clip(real_edit):
    """The speaker's mouth opens and closes on its own schedule whatever the emotion."""
    src = mouth_openings(redetect(SPEAKER))
    for label in ("happy", "sad", "angry", "surprised", "fear", "disgusted", "neutral"):
        out = mouth_openings(redetect(real_edit("speaker", label)))
        ok = ~np.isnan(src) & ~np.isnan(out)
        r = np.corrcoef(src[ok], out[ok])[0, 1]
        assert r >= 0.90, f"{label}: mouth-opening correlation {r:.3f} < 0.90"


def test_the_person_stays_the_same_person(real_edit):
    """dlib's face-recognition distance between each source frame and its edit stays under 0.6
    (dlib's same-person threshold) for the strongest edits."""
    src = frames(SPEAKER, step=12)
    for label in ("angry", "surprised", "happy"):
        out = frames(real_edit("speaker", label), step=12)
        for a, b in zip(src, out):
            la, lb = detect_landmarks(a), detect_landmarks(b)
            d = float(np.linalg.norm(face_embedding(a, la[0]) - face_embedding(b, lb[0])))
            assert d < 0.6, f"{label}: identity distance {d:.2f}"


def test_the_edit_adds_no_flicker(real_edit, real_track):
    """The hand-over-the-mouth clip (landmarks under the fingers are the least steady) edited to its
    strongest lower-face change: frame to frame, the edited face changes at most 10 % more than the
    source's face does (issue 11's bound; mean absolute grey-level change inside the box around every
    frame's face, decoded output against the source). Before the track was smoothed over time
    (face.smooth_track) the lashes and lip edges shook with each landmark's jitter: 1.18 on the benchmark."""
    track = real_track("occluded")
    lm = track.landmarks[track.found]
    x0, y0 = np.floor(np.nanmin(lm, (0, 1))).astype(int)
    x1, y1 = np.ceil(np.nanmax(lm, (0, 1))).astype(int)

    def change(path):
        g = [f.astype(np.float32).mean(2)[y0:y1, x0:x1] for f in frames(path)]
        return float(np.mean([np.abs(b - a).mean() for a, b in zip(g, g[1:])]))

    ratio = change(real_edit("occluded", "happy")) / change(REAL_CLIPS["occluded"].path)
    assert ratio <= 1.10, f"the edit shakes: frame-to-frame change {ratio:.2f}x the source's"


def test_a_hand_over_the_mouth_is_left_alone(real_track, tmp_path):
    """Occluded clip: the fingers over the mouth are not bent along with the lips.

    Measured on the frames the renderer hands to the encoder: inside the region where the
    fingers are (bright skin edges right of the image-left mouth corner, found on the source
    by hand: the box below), the edit changes the pixels much less than it changes the
    uncovered face (without the occlusion mask the fingers change more than the free side: the
    median ratio is 1.8 there, 0.6 with it)."""
    track = real_track("occluded")
    info = track.video
    src = {f.index: f.rgb for f in pipeline.media.iter_frames(info) if f.index % 6 == 0}
    ratios = []

    def sink(i, rgb):
        if i in src:
            lm = track.landmarks[i]
            iod = np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0))
            # fingers: over the image-left half of the mouth, from the corner to the lip centre
            fx0, fx1 = int(lm[48, 0] - 0.1 * iod), int(lm[51, 0] - 0.1 * iod)
            fy0, fy1 = int(lm[50, 1] - 0.1 * iod), int(lm[57, 1])
            # uncovered: the same box mirrored to the image-right half of the mouth
            mx0, mx1 = int(2 * lm[51, 0] - fx1), int(2 * lm[51, 0] - fx0)
            diff = np.abs(rgb.astype(int) - src[i]).sum(2)
            covered = diff[fy0:fy1, fx0:fx1].mean()
            free = diff[fy0:fy1, mx0:mx1].mean()
            ratios.append(covered / max(free, 1e-6))

    pipeline.render_face(track, pipeline.extract_emotion("happy"), tmp_path / "o.mp4", frame_sink=sink)
    assert np.median(ratios) < 0.7, np.round(ratios, 2)


def test_a_fingertip_on_the_cheek_is_not_stretched(real_track, tmp_path):
    """Occluded clip: the middle finger's nail rests on the cheek beside the nostril (frames 30-54).

    A smile raises the cheek under it; the nail must stay where it is, not be drawn up into the
    cheek (before the occluder's outline was found and the skin around it kept from sampling it,
    the nail was stretched to about twice its length: docs/EDIT_STRENGTH.md). The nail's box was
    read off the source frames by eye (20 x 25 px at 640 x 360, left of and beside landmark 31,
    the nostril's outer edge); the same box mirrored across the nose is uncovered cheek.
    Measured: the mean change inside the nail's box is well under the change of the free cheek
    (median ratio 1.2 before, under 0.1 now)."""
    track = real_track("occluded")
    want = (30, 36, 42, 48, 54)
    src = {f.index: f.rgb for f in pipeline.media.iter_frames(track.video) if f.index in want}
    ratios = []

    def sink(i, rgb):
        if i in src:
            lm = track.landmarks[i]
            cx, cy = int(lm[31, 0]), int(lm[31, 1])
            mx = int(lm[35, 0])
            d = np.abs(rgb.astype(int) - src[i]).mean(2)
            nail = d[cy - 13:cy + 12, cx - 28:cx - 8].mean()
            cheek = d[cy - 13:cy + 12, mx + 8:mx + 28].mean()
            assert cheek > 3, f"frame {i}: the free cheek hardly changed ({cheek:.1f}): nothing to compare with"
            ratios.append(nail / cheek)

    pipeline.render_face(track, pipeline.extract_emotion("happy"), tmp_path / "o.mp4", frame_sink=sink)
    assert len(ratios) == len(want)
    assert np.median(ratios) < 0.5, np.round(ratios, 2)


def test_occluders_are_found_only_where_there_are_some(real_track):
    """The occlusion mask (what the edit leaves alone) on every real clip, every 3rd frame: on the
    three faces nothing covers (by eye: a laugh, a crying face, a man speaking) it stays almost
    empty; on the hand-over-the-mouth clip it covers more than 5 % of the face on every frame. Share of the face's box (the source landmarks'
    bounding box) under the mask (> 0.5); measured now: laugh 0.2 % mean (1.8 % at most, her head
    turned), crying 0.0 %, speaker 0 %, hand 7-20 %."""
    from sserd_core.landmark.occlusion import occlusion_mask

    for name in ("smile", "sad", "speaker", "occluded"):
        track = real_track(name)
        shares = []
        for f in pipeline.media.iter_frames(track.video):
            face = track.face_frame(f.index)
            if f.index % 3 or face is None:
                continue
            (x0, y0), (x1, y1) = np.floor(face.landmarks.min(0)).astype(int), np.ceil(face.landmarks.max(0)).astype(int)
            m = occlusion_mask(f.rgb, face.landmarks, face.to_canonical, (x0, y0, x1, y1))
            shares.append(float((m > 0.5).mean()))
        shares = np.array(shares)
        if name == "occluded":
            assert shares.min() > 0.05, f"{name}: the fingers are missed on some frames: {np.round(shares, 3)}"
        else:
            assert shares.mean() < 0.01 and shares.max() < 0.05, f"{name}: a bare face masked: {np.round(shares, 3)}"


def test_a_laughing_reference_makes_the_speaker_happy(classified_source, real_track, tmp_path):
    """Issue 11 item 6, the common case: a photo of someone laughing (the smile clip's frame 60: mouth wide
    open, head tilted back; the independent classifier reads it as happy, p 1.00) given as the reference.
    The product must read it as mostly happy, and the speaker's edit must move the classifier's happy up.
    Before the reference fit left out the lip corners of an open mouth and the nose wings (which a tilted
    head moves), it read happy 0.36 + disgusted 0.31 + sad 0.17 + surprised 0.16, and the edit lowered
    p(happy) by 0.04 (docs/EDIT_STRENGTH.md)."""
    from expression_classifier import PROJECT_LABELS, classify, to_project

    ref = next(f.rgb for f in pipeline.media.iter_frames(pipeline.load_video(REAL_CLIPS[SMILING].path)) if f.index == 60)
    emotion = pipeline.extract_emotion(reference=ref)
    k = PROJECT_LABELS.index("happy")
    assert emotion.measured.argmax() == k and emotion.measured[k] > 0.6, emotion.describe()
    out = tmp_path / "ref.mp4"
    pipeline.render_face(real_track("speaker"), emotion, out)
    boxes, p_src = classified_source("speaker")
    got = frames(out, step=2)
    assert len(got) == len(boxes)
    change = float(to_project(classify(got, boxes))[:, k].mean() - p_src[:, k].mean())
    # (measured +0.046; the label "happy" raises it by about +0.09 with the believable, closed-mouth smile)
    assert change > 0.02, f"a laughing reference moved p(happy) by {change:+.3f}"

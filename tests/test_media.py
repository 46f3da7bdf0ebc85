"""Media handling: frame count, fps, size, duration, audio, timestamps, rotation, odd sizes, atomic writes."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import numpy as np
import pytest
from helpers import SAMPLE, SAMPLE_HOPPER, sample_frames, write_clip

from sserd_core import media, pipeline
from sserd_core.errors import MediaError
from sserd_core.face import detect_faces


def _sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def full_edit(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "sad.mp4"
    before = _sha(SAMPLE)
    res = pipeline.edit_video(SAMPLE, out, pipeline.extract_emotion("sad", 0.8))
    assert _sha(SAMPLE) == before, "the input file must never be modified"
    return out, res


def test_output_keeps_frames_fps_size_duration(full_edit):
    out, _ = full_edit
    src, dst = media.probe_video(SAMPLE), media.probe_video(out)
    assert abs(src.n_frames - dst.n_frames) <= 1
    assert dst.fps == src.fps
    assert (dst.width, dst.height) == (src.width, src.height)
    assert abs(src.duration - dst.duration) <= 1.0 / float(src.fps) + 1e-6


def test_audio_is_copied_sample_for_sample(full_edit):
    out, res = full_edit
    assert res.has_audio
    a, b = media.read_audio(SAMPLE), media.read_audio(out)
    assert b is not None and a.sample_rate == b.sample_rate
    assert a.waveform.shape == b.waveform.shape
    assert np.array_equal(a.waveform, b.waveform)


def test_frame_timestamps_are_kept(full_edit):
    out, _ = full_edit
    t_src = [f.time for f in media.iter_frames(media.probe_video(SAMPLE))]
    t_out = [f.time for f in media.iter_frames(media.probe_video(out))]
    assert np.allclose(t_src, t_out, atol=1e-3)


def test_variable_frame_rate_timestamps_survive(tmp_path):
    frames = sample_frames(SAMPLE_HOPPER, end=1.2)
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.choice([0.02, 0.04, 0.06], size=len(frames))) - 0.02
    src = write_clip(tmp_path / "vfr.mp4", [(f, t) for (f, _), t in zip(frames, times)], (448, 448))
    out = tmp_path / "vfr_out.mp4"
    pipeline.edit_video(src, out, pipeline.extract_emotion("happy"))
    t_in = [f.time for f in media.iter_frames(media.probe_video(src))]
    t_out = [f.time for f in media.iter_frames(media.probe_video(out))]
    assert len(t_in) == len(t_out) == len(frames)
    assert np.allclose(t_in, t_out, atol=1e-3)


def test_start_end_range_cuts_video_and_audio(tmp_path):
    out = tmp_path / "cut.mp4"
    pipeline.edit_video(SAMPLE, out, pipeline.extract_emotion("surprised"), pipeline.EditOptions(start=1.0, end=2.5))
    info = media.probe_video(out)
    assert abs(info.n_frames - 38) <= 1  # 1.5 s at 25 fps (frames at 1.00 .. 2.48 s)
    a = media.read_audio(out)
    assert a is not None
    assert abs(a.waveform.shape[1] / a.sample_rate - 1.5) < 0.06
    # the audio is the source's 1.0–2.5 s segment (re-encoded to cut it exactly)
    ref = media.read_audio(SAMPLE, 1.0, 2.5).waveform[0]
    got = a.waveform[0]
    n = min(len(ref), len(got))
    lag = np.argmax(np.correlate(got[:n], ref[:n][2000:-2000], mode="valid")) - 2000
    assert abs(lag) < 0.03 * a.sample_rate
    r = np.corrcoef(ref[max(0, -lag):n - max(0, lag)], got[max(0, lag):n - max(0, -lag)][: n - abs(lag)])[0, 1]
    assert r > 0.9


def test_odd_frame_size_is_kept(tmp_path):
    frames = [(f[:447, :445], t) for f, t in sample_frames(SAMPLE, end=0.6)]
    src = write_clip(tmp_path / "odd.mp4", frames, (445, 447), audio=SAMPLE)
    out = tmp_path / "odd_out.mp4"
    pipeline.edit_video(src, out, pipeline.extract_emotion("sad"))
    info = media.probe_video(out)
    assert (info.width, info.height) == (445, 447)
    assert info.n_frames == len(frames)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to tag a rotated clip (apt-get install ffmpeg)")
def test_rotation_metadata_is_honoured_like_ffmpeg_does(tmp_path):
    # a phone-style clip: frames stored sideways, a display-rotation tag to show them upright
    frames = [(np.ascontiguousarray(np.rot90(f[:, :400], k=-1)), t) for f, t in sample_frames(SAMPLE, end=0.6)]
    stored = write_clip(tmp_path / "stored.mp4", frames, (448, 400), audio=SAMPLE)
    tagged = tmp_path / "phone.mp4"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(stored), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(tagged)], check=True)
    png = tmp_path / "ffmpeg_view.png"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(tagged), "-frames:v", "1", str(png)], check=True)
    shown = media.read_image(png)
    info = media.probe_video(tagged)
    assert info.rotation in (90, 270)
    first = next(media.iter_frames(info)).rgb
    assert first.shape == shown.shape
    assert np.abs(first.astype(int) - shown).mean() < 2.0, "decoded frames must look like ffmpeg shows them"
    out = tmp_path / "phone_out.mp4"
    pipeline.edit_video(tagged, out, pipeline.extract_emotion("sad"))
    o = media.probe_video(out)
    assert (o.width, o.height) == (shown.shape[1], shown.shape[0]) and o.rotation == 0
    if detect_faces(shown):  # upright as shown: the edit found and kept the face
        assert detect_faces(next(media.iter_frames(o)).rgb)


def test_clip_without_audio_gives_video_only_with_a_warning(tmp_path):
    src = write_clip(tmp_path / "silent.mp4", sample_frames(SAMPLE, end=0.5), (448, 448))
    out = tmp_path / "silent_out.mp4"
    with pytest.warns(UserWarning, match="no audio"):
        res = pipeline.edit_video(src, out, pipeline.extract_emotion("happy"))
    assert not res.has_audio and out.exists()
    assert media.read_audio(out) is None


@pytest.mark.parametrize("ext", [".mkv", ".webm", ".mov"])
def test_other_containers(tmp_path, ext):
    out = tmp_path / f"o{ext}"
    pipeline.edit_video(SAMPLE, out, pipeline.extract_emotion("happy"), pipeline.EditOptions(end=0.6))
    info = media.probe_video(out)
    assert info.n_frames == 15 and info.has_audio


def test_interrupted_render_leaves_no_file(tmp_path, content_tracks):
    class Stop(Exception):
        pass

    def progress(stage, done, total):
        if stage == "rendering" and done == 5:
            raise Stop()

    out = tmp_path / "never.mp4"
    with pytest.raises(Stop):
        pipeline.render_face(content_tracks("hopper"), pipeline.extract_emotion("sad"), out, progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_face_index_edits_only_the_chosen_face(tmp_path):
    big = sample_frames(SAMPLE_HOPPER, end=0.6)
    small = sample_frames(SAMPLE, end=0.6)
    frames = []
    for (a, t), (b, _) in zip(big, small):
        b_small = b[::2, ::2][:224, :224]
        canvas = np.full((448, 448 + 224, 3), 200, np.uint8)
        canvas[:, :448] = a
        canvas[112:336, 448:] = b_small
        frames.append((canvas, t))
    src = write_clip(tmp_path / "two.mp4", frames, (672, 448))
    outs = {}
    for idx in (0, 1):
        track = pipeline.disentangle_content(pipeline.load_video(src), face_index=idx)
        got = []
        pipeline.render_face(track, pipeline.extract_emotion("sad"), tmp_path / f"f{idx}.mp4",
                             frame_sink=lambda i, rgb: got.append(rgb))
        outs[idx] = got
    src_frames = [f for f, _ in media_frames(src)]
    for s, o0, o1 in zip(src_frames, outs[0], outs[1]):
        assert np.array_equal(o0[:, 448:], s[:, 448:]), "index 0 (largest face) must leave the small face alone"
        assert np.array_equal(o1[:, :448], s[:, :448]), "index 1 must leave the large face alone"
    assert any(not np.array_equal(o[:, :448], s[:, :448]) for o, s in zip(outs[0], src_frames))
    assert any(not np.array_equal(o[:, 448:], s[:, 448:]) for o, s in zip(outs[1], src_frames))
    with pytest.raises(pipeline.SSERDError, match="face"):
        pipeline.disentangle_content(pipeline.load_video(src), face_index=2)


def media_frames(path):
    return [(f.rgb, f.time) for f in media.iter_frames(media.probe_video(path))]


def test_frames_without_a_face_pass_through_unchanged(tmp_path):
    frames = sample_frames(SAMPLE_HOPPER, end=1.2)
    gone = set(range(10, 20))
    frames = [(np.full_like(f, 90) if i in gone else f, t) for i, (f, t) in enumerate(frames)]
    src = write_clip(tmp_path / "gap.mp4", frames, (448, 448))
    track = pipeline.disentangle_content(pipeline.load_video(src))
    assert not track.found[list(gone)].any() and track.found[:8].all() and track.found[-5:].all()
    got = {}
    pipeline.render_face(track, pipeline.extract_emotion("happy"), tmp_path / "o.mp4",
                         frame_sink=lambda i, rgb: got.__setitem__(i, rgb))
    dec = media_frames(src)
    for i in gone:
        assert np.array_equal(got[i], dec[i][0])
    assert not np.array_equal(got[3], dec[3][0])


def test_content_track_round_trips_through_npz(tmp_path, content_tracks):
    """A reloaded track must measure and render exactly like the original: compare what the track is
    used for (emotion/mouth measured on real frames, the edited pixels), not the fields save() writes."""
    from sserd_core import expression
    from sserd_core.landmark.render import LandmarkEditor

    t = content_tracks("astronaut")
    t.save(tmp_path / "t.npz")
    u = type(t).load(tmp_path / "t.npz")
    assert u.video == t.video and u.n_frames == t.n_frames
    info = media.probe_video(t.video.path, end=0.6)
    target = np.eye(7, dtype=np.float32)[2]
    checked = 0
    for fr in media.iter_frames(info):
        if not t.found[fr.index] or fr.index % 5:
            continue
        lm = t.landmarks[fr.index]
        a_emo, a_mouth = expression.measure_frame(fr.rgb, lm, t)
        b_emo, b_mouth = expression.measure_frame(fr.rgb, lm, u)
        assert np.allclose(a_emo, b_emo) and a_mouth == b_mouth
        ea = LandmarkEditor().edit([fr.rgb], [t.face_frame(fr.index)], [target])[0]
        eb = LandmarkEditor().edit([fr.rgb], [u.face_frame(fr.index)], [target])[0]
        assert np.array_equal(ea, eb)
        checked += 1
    assert checked >= 2
    # the speech-coupling correction survives (it is not zero for a talking clip)
    assert np.abs(u.coupling()).max() > 0

def test_read_image_refuses_a_video_and_picture_of_takes_its_middle_frame(tmp_path):
    """An image reader that silently returned a video's frame would hide a wrong input: it says what it got."""
    with pytest.raises(MediaError, match="sample.mp4 is a video, not an image"):
        media.read_image(SAMPLE)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(MediaError, match="notes.png is not an image"):
        media.read_image(text)
    # on purpose, either kind: the middle frame of the decoded clip (counted here by decoding every frame)
    frames = [f.rgb for f in media.iter_frames(media.probe_video(SAMPLE))]
    np.testing.assert_array_equal(media.picture_of(SAMPLE), frames[len(frames) // 2])


# ----------------------------------------------------------------------------- one encode generation, strictly
# (issue 13): an output is written from the decoder's own 4:2:0 planes, with only the changed pixels converted

def _yuv_planes(path):
    """Decoded frames of ``path`` as PyAV gives them in their own format: ``[(Y, U, V)]`` int16, and the tags."""
    import av

    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    tags = (int(frames[0].colorspace), int(frames[0].color_range))
    return [tuple(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width].astype(np.int16)
                  for p in f.planes) for f in frames], tags


def test_an_unedited_bt709_clip_keeps_its_colours(tmp_path):
    """real_speaker is BT.709. Written from its frames' planes, the output is tagged BT.709 and its chroma sits
    where the source's does (x264's noise only); written from RGB (the old path: BT.709 → RGB → BT.601), the
    chroma moves by most of a level over the whole frame. The source's planes come from PyAV, not from SSERD."""
    from real_media import REAL_CLIPS

    info = media.probe_video(REAL_CLIPS["speaker"].path, end=1.0)
    frames = list(media.iter_frames(info, planes=True))
    assert all(f.planes is not None for f in frames)
    for name, with_planes in (("planes.mp4", True), ("rgb.mp4", False)):
        with media.VideoWriter(str(tmp_path / name), info.width, info.height, info.fps) as w:
            for f in frames:
                w.write(f.rgb, f.time, source=f if with_planes else None)
    src, src_tags = _yuv_planes(REAL_CLIPS["speaker"].path)
    assert src_tags[0] == 1  # AVCOL_SPC_BT709: the test needs a BT.709 source
    shift = {}
    for name in ("planes.mp4", "rgb.mp4"):
        out, tags = _yuv_planes(tmp_path / name)
        assert len(out) == len(frames)
        shift[name] = [float(np.mean([(o[k] - s[k]).mean() for o, s in zip(out, src)])) for k in (1, 2)]
        if name == "planes.mp4":
            assert tags == src_tags, "the output is tagged as the source is"
            luma = float(np.mean([np.abs(o[0] - s[0]).mean() for o, s in zip(out, src)]))
            assert luma < 1.0, luma  # crf 18 on the source's own planes
    assert max(abs(v) for v in shift["planes.mp4"]) < 0.15, shift
    assert max(abs(v) for v in shift["rgb.mp4"]) > 0.4, ("the RGB round trip no longer shifts: the test is blind", shift)


def test_only_the_edited_pixels_are_converted_back():
    """A patch over a real frame: every Y/U/V sample outside the patched pixels (and their 4:2:0 neighbours) is
    the decoder's own, bit for bit; inside, the planes read back (by PyAV, with the source's tags) give the
    edited RGB within the 4:2:0 round trip. A patch told as a box gives the same planes as the whole frame."""
    import av

    from real_media import REAL_CLIPS
    from sserd_core.media.write import patched_planes

    for clip in ("speaker", "smile"):  # BT.709 and BT.601
        fr = next(media.iter_frames(media.probe_video(REAL_CLIPS[clip].path), planes=True))
        H, W = fr.rgb.shape[:2]
        after = fr.rgb.copy()
        region = np.s_[101:181, 203:301]  # odd edges, on purpose
        after[region] = np.clip(after[region].astype(int) + 25, 0, 255).astype(np.uint8)
        yuv = patched_planes(fr.planes, media.Patch.whole(fr.rgb, after))
        assert patched_planes(fr.planes, media.Patch(fr.rgb, after[95:190, 199:311].copy(), 199, 95)).tobytes() == \
            yuv.tobytes()
        assert patched_planes(fr.planes, media.Patch(fr.rgb)) is fr.planes.yuv
        outside = np.ones((H, W), bool)
        outside[100:182, 202:302] = False
        assert np.array_equal(yuv[:H][outside], fr.planes.yuv[:H][outside])
        vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        vf.colorspace, vf.color_range = fr.planes.colorspace, fr.planes.color_range
        back = vf.to_ndarray(format="rgb24").astype(int)
        assert np.abs(back[region] - after[region]).mean() < 2.0, clip
        assert np.array_equal(back[outside], fr.rgb[outside].astype(int)), clip


def test_frames_without_planes_fall_back_to_rgb(tmp_path):
    """A frame without planes (a rotated clip's: turned upright in RGB) is written from RGB, and a stream that
    started from RGB stays RGB (its colour matrix cannot change mid-stream)."""
    info = media.probe_video(SAMPLE, end=0.4)
    frames = list(media.iter_frames(info, planes=True))
    assert frames[0].planes is not None
    rotated = media.Frame(0, 0.0, frames[0].rgb, None)
    with media.VideoWriter(str(tmp_path / "o.mp4"), info.width, info.height, info.fps) as w:
        w.write(rotated.rgb, 0.0, source=rotated)
        w.write(frames[1].rgb, frames[1].time, source=frames[1])  # a stream started from RGB stays RGB
    assert media.probe_video(tmp_path / "o.mp4").n_frames == 2


def test_planes_give_back_the_decoders_rgb_bit_for_bit():
    """The render pass takes the tracking pass's last frames as planes only and makes their RGB again: it must
    be exactly what the decoder gave (BT.709 and BT.601 clips)."""
    from real_media import REAL_CLIPS

    for clip in ("speaker", "smile"):
        for fr in media.iter_frames(media.probe_video(REAL_CLIPS[clip].path), max_frames=6, planes=True):
            assert np.array_equal(fr.planes.to_rgb(), fr.rgb), (clip, fr.index)


def test_the_boxes_colour_conversion_is_swscales():
    """The edited box is converted to 4:2:0 by the colour matrix itself (OpenCV), 10x faster than swscale; it
    must be what swscale (the reference, FFmpeg's own converter) gives, for a BT.709 and a BT.601 clip."""
    import av

    from real_media import REAL_CLIPS
    from sserd_core.media.write import rgb_to_yuv420

    for clip, space in (("speaker", 1), ("smile", 6)):
        fr = next(media.iter_frames(media.probe_video(REAL_CLIPS[clip].path), planes=True))
        assert fr.planes.colorspace == space
        box = np.ascontiguousarray(fr.rgb[10:300, 40:400])
        want = av.VideoFrame.from_ndarray(box, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=space, dst_color_range=1).to_ndarray().astype(int)
        got = rgb_to_yuv420(box, space, fr.planes.color_range).astype(int)
        h = box.shape[0]
        assert got.shape == want.shape
        assert np.abs(got[:h] - want[:h]).max() <= 1, clip
        assert np.abs(got[h:] - want[h:]).max() <= 4 and np.abs(got[h:] - want[h:]).mean() < 0.1, clip


def test_a_frame_rate_change_is_lossless_and_keeps_the_colours(tmp_path):
    """ComfyUI's force_fps path: real_speaker (30 fps, BT.709) resampled to 12.5 fps. Read back by PyAV, every
    output frame's Y/U/V planes are those of the source frame shown at that moment, bit for bit, and the
    file is tagged as the source (it used to be lossless RGB, then encoded from RGB: BT.601 for a BT.709
    clip). A source without 4:2:0 planes (odd size: written as 4:4:4) goes the RGB way, also bit-exact."""
    from fractions import Fraction

    from real_media import REAL_CLIPS

    src_path = REAL_CLIPS["speaker"].path
    info = media.probe_video(src_path, end=1.0)
    out = tmp_path / "resampled.mkv"
    duration = media.resample_video(info, Fraction(25, 2), out)
    src, src_tags = _yuv_planes(src_path)
    got, tags = _yuv_planes(out)
    assert tags == src_tags and src_tags[0] == 1, (tags, src_tags)  # BT.709, as the source
    assert len(got) == round(duration * 12.5) == 13, (len(got), duration)
    fps = float(info.fps)
    for k, planes in enumerate(got):
        shown = int(np.floor(k / 12.5 * fps + 1e-6))  # the source frame on screen at k / 12.5 s
        for a, b in zip(planes, src[shown]):
            np.testing.assert_array_equal(a, b, err_msg=f"output frame {k} (source frame {shown})")
    # the edit downstream takes the planes path on the intermediate, as on the source
    assert all(f.planes is not None for f in media.iter_frames(media.probe_video(out), planes=True))

    odd = tmp_path / "odd.mp4"
    frames = [np.random.default_rng(i).integers(0, 256, (45, 63, 3), np.uint8) for i in range(6)]
    with media.VideoWriter(str(odd), 63, 45, Fraction(10)) as w:
        for i, f in enumerate(frames):
            w.write(f, i / 10)
    decoded = [f.rgb for f in media.iter_frames(media.probe_video(odd))]
    media.resample_video(media.probe_video(odd), Fraction(5), tmp_path / "odd.mkv")
    back = [f.rgb for f in media.iter_frames(media.probe_video(tmp_path / "odd.mkv"))]
    assert len(back) == 3
    for k, rgb in enumerate(back):
        np.testing.assert_array_equal(rgb, decoded[2 * k])

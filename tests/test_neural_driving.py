"""The neural backend driven per frame by a reference clip (the paper's protocol), and its decoder-noise option."""

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from matplotlib import cbook

from models_helpers import tiny_net, one_thread  # noqa: F401 (fixture)
from sserd_core import neural
from sserd_core.neural.editor import _largest_face
from sserd_core.editor import FaceFrame
from sserd_core.emotion import EmotionSpec, emotion_vector
from sserd_core.errors import NoFaceError, SSERDError
from sserd_core.media import read_image

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "assets" / "astronaut_face.png"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def faces():
    hopper = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    lm = _largest_face(hopper).astype(np.float32)
    return hopper, lm, read_image(ASTRONAUT)


@pytest.fixture(scope="module")
def editor(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny") / "model"
    tiny_net(seed=1).save_pretrained(d)
    return neural.load_editor(d, device="cpu", batch_size=3)


def _face(lm):
    return FaceFrame(landmarks=lm, to_canonical=np.zeros((2, 3), np.float32), neutral=np.zeros((68, 2), np.float32),
                     source_emotion=emotion_vector("neutral"))


def test_sync_modes_pick_the_driving_frame():
    codes = torch.arange(4.0)[:, None, None].expand(4, 2, 3)
    idx = neural.DrivingClip(codes, [0, 0.1, 0.2, 0.3], [True] * 4, sync="index")  # index-synchronised, looping
    assert [idx.index_for(i) for i in range(10)] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    # time-aligned: a 10 fps clip (0.4 s) under a 25 fps source, looping after 0.4 s
    tim = neural.DrivingClip(codes, [0, 0.1, 0.2, 0.3], [True] * 4, sync="time", source_fps=25)
    assert [tim.index_for(i) for i in (0, 2, 3, 5, 7, 9, 10, 12)] == [0, 0, 1, 2, 2, 3, 0, 0]
    assert tim.index_for(0, time=0.55) == 1
    # stretch (official MEADTestDataset: ref[int(i / (M / N))]): 4 frames over a 10-frame source
    st = neural.DrivingClip(codes, [0, 0.1, 0.2, 0.3], [True] * 4, sync="stretch", source_frames=10)
    assert [st.index_for(i) for i in range(10)] == [int(i / (10 / 4)) for i in range(10)]
    assert st.codes_for([0, 9]).tolist() == [codes[0].tolist(), codes[3].tolist()]
    with pytest.raises(SSERDError, match="needs source_frames"):
        neural.DrivingClip(codes, [0, 0.1, 0.2, 0.3], [True] * 4, sync="stretch")
    with pytest.raises(SSERDError, match="sync must be one of"):
        neural.DrivingClip(codes, [0, 0.1, 0.2, 0.3], [True] * 4, sync="nearest")


def test_encoding_a_clip_tracks_the_face_and_fills_gaps(editor, faces):
    hopper, _, astronaut = faces
    blank = np.full_like(astronaut, 90)
    clip = editor.encode_driving_clip([astronaut, blank, hopper, blank], fps=25)
    assert len(clip) == 4 and clip.has_face.tolist() == [True, False, True, False]
    torch.testing.assert_close(clip.codes[0], editor.encode_reference(astronaut))
    torch.testing.assert_close(clip.codes[2], editor.encode_reference(hopper))
    torch.testing.assert_close(clip.codes[1], clip.codes[0])   # no face: the nearest frame's code
    torch.testing.assert_close(clip.codes[3], clip.codes[2])
    assert np.allclose(clip.times, [0, 0.04, 0.08, 0.12])


def test_each_source_frame_is_driven_by_its_clip_frame(editor, faces):
    hopper, lm, _ = faces
    g = torch.Generator().manual_seed(0)
    codes = 3 * torch.randn(3, editor.net.n_styles, int(editor.net.config.style_dim), generator=g)  # far apart
    clip = neural.DrivingClip(codes, [0, 0.04, 0.08], [True] * 3, sync="index")
    # one source frame, edited 4 times through the pipeline's call pattern (consecutive batches after prepare())
    editor.set_driving_clip(clip)
    editor.prepare(EmotionSpec.from_label("happy"))          # no prototypes needed: the clip is the emotion source
    target = emotion_vector("happy")
    out = editor.edit([hopper] * 2, [_face(lm)] * 2, [target] * 2) + editor.edit([hopper] * 2, [_face(lm)] * 2,
                                                                                 [target] * 2)
    out = [o.astype(int) for o in out]
    assert np.array_equal(out[0], out[3])                    # frames 0 and 3 → clip frame 0 (index sync, looping)
    assert all(np.abs(out[a] - out[b]).sum() > 0 for a, b in ((0, 1), (1, 2), (0, 2)))
    # frame k is exactly the edit with clip frame k's code as the (single) reference
    for k in range(3):
        single = neural.NeuralEditor(editor.net, device="cpu")
        single._reference_code = codes[k]
        assert np.array_equal(single.edit([hopper], [_face(lm)], [target])[0].astype(int), out[k]), k
    # explicit frame indices place frames anywhere; prepare() restarts the count
    editor.prepare(EmotionSpec.from_label("happy"))
    assert np.array_equal(editor.edit([hopper], [_face(lm)], [target], frame_indices=[4])[0].astype(int), out[1])
    assert np.array_equal(editor.edit([hopper], [_face(lm)], [target])[0].astype(int), out[2])   # continues at 5
    editor.set_driving_clip(None)


def test_driving_clip_from_a_video_file(editor, faces, tmp_path):
    from sserd_core import media

    hopper, _, astronaut = faces
    path = tmp_path / "ref.mp4"
    with media.VideoWriter(str(path), 256, 256, Fraction(10)) as vw:   # a 10 fps clip, 4 frames, two faces
        for k in range(4):
            vw.write(cv2.resize(astronaut if k % 2 == 0 else hopper, (256, 256)), k / 10)
    clip = neural.load_driving_clip(editor, path, sync="time", source_fps=25)
    assert len(clip) == 4 and clip.has_face.all() and np.allclose(clip.times, [0, 0.1, 0.2, 0.3], atol=1e-3)
    assert clip.period == pytest.approx(0.4, abs=1e-3)
    with pytest.raises(NoFaceError, match="driving clip"):
        editor.encode_driving_clip([np.full((64, 64, 3), 90, np.uint8)] * 2)


def test_noise_modes(editor, faces):
    hopper, lm, astronaut = faces
    crop, _ = neural.align_face(hopper, lm, editor.input_size, editor.alignment)
    editor.prepare(EmotionSpec.from_vector(emotion_vector("happy"), reference_rgb=astronaut))
    target = [emotion_vector("happy")]
    assert editor.noise_mode == "zero"                       # default: deterministic, no flicker
    assert np.array_equal(editor.edit_crops([crop], target), editor.edit_crops([crop], target))
    import copy

    net = copy.deepcopy(editor.net)
    with torch.no_grad():  # StyleGAN2 initialises the noise strengths to 0; a trained model has non-zero ones
        for name, p in net.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.5)
    rnd = neural.NeuralEditor(net, device="cpu", noise_mode="random")
    rnd.prepare(EmotionSpec.from_vector(emotion_vector("happy"), reference_rgb=astronaut))
    assert not np.array_equal(rnd.edit_crops([crop], target), rnd.edit_crops([crop], target))
    with pytest.raises(SSERDError, match="Unknown noise mode"):
        neural.NeuralEditor(editor.net, device="cpu", noise_mode="gaussian")

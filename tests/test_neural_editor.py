"""The neural backend as a FaceEditor: alignment, paste-back, prototypes, and the whole pipeline."""

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from matplotlib import cbook

from models_helpers import TINY_INPUT, official_tiny_checkpoint, tiny_net, one_thread  # noqa: F401 (fixture)
from sserd_core import neural
from sserd_core.neural.editor import _largest_face
from sserd_core.editor import FaceFrame
from sserd_core.emotion import EmotionSpec, emotion_vector
from sserd_core.errors import NoFaceError, SSERDError
from sserd_core.media import read_image, write_image
from sserd_core.cli import main as sserd_main
from sserd_core.models.convert import convert_checkpoint
from sserd_core.models.prototypes import load_prototypes

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "sample.mp4"
ASTRONAUT = ROOT / "assets" / "astronaut_face.png"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hopper():
    rgb = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    lm = _largest_face(rgb)
    assert lm is not None
    return rgb, lm.astype(np.float32)


def face_frame(lm):
    return FaceFrame(landmarks=lm, to_canonical=np.zeros((2, 3), np.float32), neutral=np.zeros((68, 2), np.float32),
                     source_emotion=emotion_vector("neutral"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny") / "model"
    tiny_net(seed=1).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory, hopper):
    d = tmp_path_factory.mktemp("refs")
    (d / "happy").mkdir()
    (d / "neutral").mkdir()
    shutil.copy(ASTRONAUT, d / "happy" / "astronaut.png")
    write_image(d / "neutral" / "hopper.png", hopper[0])
    write_image(d / "neutral" / "blank.png", np.full((64, 64, 3), 128, np.uint8))  # no face: skipped
    return d


# ------------------------------------------------------------------ alignment
def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (68, 2))
    a = 1.7 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    dst = src @ a.T + [12.0, -5.0]
    np.testing.assert_allclose(neural.similarity_fit(src, dst), np.hstack([a, [[12.0], [-5.0]]]), atol=1e-9)


def test_template_alignment_puts_a_real_face_on_the_template(hopper):
    rgb, lm = hopper
    crop, m = neural.align_face(rgb, lm, 256, "sserd-template")
    assert crop.shape == (256, 256, 3)
    mapped = lm @ m[:2, :2].T + m[:, 2]
    err = np.linalg.norm(mapped - neural.template_in_crop(256), axis=1)  # the official 1.25x-zoomed framing
    assert err.mean() < 8.0, err.mean()  # px in the 256 crop; a wrong transform is off by tens of px
    # the landmarks fitted on the aligned crop itself agree with the mapped ones
    lm_crop = _largest_face(crop)
    assert lm_crop is not None and np.abs(lm_crop - mapped).mean() < 5.0


def test_ffhq_alignment_levels_the_eyes(hopper):
    rgb, lm = hopper
    _, m = neural.align_face(rgb, lm, 256, "ffhq")
    mapped = lm @ m[:2, :2].T + m[:, 2]
    eye_l, eye_r = mapped[36:42].mean(0), mapped[42:48].mean(0)
    assert abs(eye_l[1] - eye_r[1]) < 3.0
    assert 60 < eye_l[0] < 128 < eye_r[0] < 196 and 64 < eye_l[1] < 128


def test_dtype_and_device_selection():
    cpu = torch.device("cpu")
    assert neural.pick_dtype(cpu) == torch.float32
    assert neural.pick_dtype(cpu, "bf16") == torch.bfloat16 and neural.pick_dtype(cpu, torch.float16) == torch.float16
    with pytest.raises(SSERDError, match="Unknown dtype"):
        neural.pick_dtype(cpu, "int8")
    assert neural.pick_device("cpu").type == "cpu"


# ------------------------------------------------------------------ editor
def test_reference_edit_changes_only_the_face(tiny_dir, hopper):
    rgb, lm = hopper
    ed = neural.load_editor(tiny_dir, device="cpu")
    assert ed.output_size == 64 and ed.dtype == torch.float32
    ed.prepare(EmotionSpec.from_vector(emotion_vector("happy"), reference_rgb=read_image(ASTRONAUT)))
    blank = np.full_like(rgb, 77)
    out = ed.edit([rgb, blank, rgb], [face_frame(lm), None, face_frame(lm)], [emotion_vector("happy")] * 3)
    assert [o.shape for o in out] == [rgb.shape] * 3 and all(o.dtype == np.uint8 for o in out)
    assert np.array_equal(out[1], blank)  # no face → frame untouched
    changed = np.any(out[0] != rgb, axis=2)
    x0, y0 = lm.min(0) - 0.3 * np.ptp(lm, 0)
    x1, y1 = lm.max(0) + 0.3 * np.ptp(lm, 0)
    inside = np.zeros_like(changed)
    inside[int(max(y0, 0)):int(y1), int(max(x0, 0)):int(x1)] = True
    assert changed[~inside].sum() == 0  # bit-identical away from the face
    face = np.zeros_like(changed)
    face[int(lm[:, 1].min()):int(lm[:, 1].max()), int(lm[:, 0].min()):int(lm[:, 0].max())] = True
    assert changed[face].mean() > 0.5  # the face itself is re-synthesised
    # batching does not change the result
    ed.batch_size = 1
    single = ed.edit([rgb], [face_frame(lm)], [emotion_vector("happy")])[0]
    assert np.abs(single.astype(int) - out[2].astype(int)).max() <= 1


def test_half_precision_runs_and_stays_close_to_fp32(tiny_dir, hopper):
    """The GPU default is bf16 (fp16 where unsupported); every buffer and input must follow the dtype."""
    rgb, lm = hopper
    crop, _ = neural.align_face(rgb, lm, 64, "sserd-template")
    ref = read_image(ASTRONAUT)
    outs = {}
    for dtype in ("fp32", "bf16", "fp16"):
        ed = neural.load_editor(tiny_dir, device="cpu", dtype=dtype)
        assert next(ed.net.parameters()).dtype == neural.pick_dtype(torch.device("cpu"), dtype)
        ed.prepare(EmotionSpec.from_vector(emotion_vector("happy"), reference_rgb=ref))
        outs[dtype] = ed.edit_crops([crop], [emotion_vector("happy")]).astype(int)
    assert outs["fp32"].std() > 5  # a real image, not a flat one that any precision reproduces
    for half in ("bf16", "fp16"):
        assert np.abs(outs[half] - outs["fp32"]).mean() < 2, half  # of 255 (measured: 0.13 and 0.01)


def test_max_face_size_decodes_fewer_levels(tiny_dir, hopper):
    rgb, lm = hopper
    full = neural.load_editor(tiny_dir, device="cpu")
    small = neural.load_editor(tiny_dir, device="cpu", max_face_size=32)
    for ed in (full, small):
        ed.prepare(EmotionSpec.from_vector(emotion_vector("happy"), reference_rgb=read_image(ASTRONAUT)))
    crop, _ = neural.align_face(rgb, lm, 64, "sserd-template")
    assert full.edit_crops([crop], [emotion_vector("happy")]).shape == (1, 64, 64, 3)
    assert small.edit_crops([crop], [emotion_vector("happy")]).shape == (1, 32, 32, 3)
    out = small.edit([rgb], [face_frame(lm)], [emotion_vector("happy")])[0]
    assert out.shape == rgb.shape and np.any(out != rgb)


NEURAL_ASKED = {"dtype": "bf16", "batch_size": 3, "noise_mode": "random", "max_face_size": 32}


def _settings(ed) -> dict:
    return {"dtype": ed.dtype, "batch_size": ed.batch_size, "noise_mode": ed.noise_mode,
            "max_face_size": ed.max_face_size}


def test_edit_options_reach_the_loaded_neural_editor(tiny_dir, hopper):
    """EditOptions' neural fields are what the loaded editor runs with (its defaults when left out), and the
    smaller decode they ask for is what it renders."""
    from sserd_core.pipeline import EditOptions

    asked = EditOptions(backend=str(tiny_dir), device="cpu", **NEURAL_ASKED).editor()
    assert _settings(asked) == {**NEURAL_ASKED, "dtype": torch.bfloat16}
    default = EditOptions(backend=str(tiny_dir), device="cpu").editor()
    assert _settings(default) == {"dtype": torch.float32, "batch_size": 2, "noise_mode": "zero", "max_face_size": None}
    crop, _ = neural.align_face(hopper[0], hopper[1], 64, "sserd-template")
    asked.prepare(EmotionSpec.from_vector(emotion_vector("happy"), reference_rgb=read_image(ASTRONAUT)))
    assert asked.edit_crops([crop], [emotion_vector("happy")]).shape == (1, 32, 32, 3)
    with pytest.raises(SSERDError, match="batch size must be between 1 and"):
        EditOptions(backend=str(tiny_dir), batch_size=10_000)


def test_cli_neural_flags_reach_the_loaded_editor(tiny_dir, tmp_path, monkeypatch, capsys):
    """`sserd edit --model M --dtype/--batch-size/--noise-mode/--max-face-size` hands the job an editor loaded so."""
    from sserd_core import pipeline

    seen = {}

    def edit(source, out, options, *, emotion=None, editor=None, progress=None):
        seen.update(_settings(editor), options=options)
        raise SSERDError("stopped by the test")

    monkeypatch.setattr(pipeline, "edit", edit)
    argv = ["edit", str(SAMPLE), "-o", str(tmp_path / "o.mp4"), "--emotion", "happy", "--model", str(tiny_dir),
            "--device", "cpu", "-q"] + [a for k, v in NEURAL_ASKED.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    assert sserd_main(argv) == 1
    assert "stopped by the test" in capsys.readouterr().err
    assert {k: seen[k] for k in NEURAL_ASKED} == {**NEURAL_ASKED, "dtype": torch.bfloat16}
    assert seen["options"].neural_options() == NEURAL_ASKED


def test_space_loads_an_editor_per_model_and_neural_settings(tiny_dir, monkeypatch):
    """The Space keeps loaded editors by model *and* neural settings: other settings load another editor, the same
    ones reuse it."""
    pytest.importorskip("gradio")
    import app
    from sserd_core.pipeline import EditOptions

    monkeypatch.setattr(app, "ALLOW_MODEL_CHOICE", True)
    monkeypatch.setattr(app, "_neural_editors", {})
    default = app._neural_editor(str(tiny_dir))
    asked = app._neural_editor(str(tiny_dir), EditOptions(**NEURAL_ASKED))
    assert asked is not default and _settings(asked) == {**NEURAL_ASKED, "dtype": torch.bfloat16}
    assert app._neural_editor(str(tiny_dir), EditOptions(**NEURAL_ASKED)) is asked
    assert app._neural_editor(str(tiny_dir), EditOptions(dtype="auto", batch_size=0)) is default
    assert len(app._neural_editors) == 2


def test_label_needs_prototypes_then_uses_them(tmp_path, tiny_dir, ref_dir, hopper):
    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    ed = neural.load_editor(model, device="cpu")
    with pytest.raises(SSERDError, match="no emotion prototype for happy.*sserd prototypes"):
        ed.prepare(EmotionSpec.from_label("happy"))
    assert sserd_main(["prototypes", str(ref_dir), str(model), "--device", "cpu"]) == 0
    counts = neural.compute_prototypes(ref_dir, model)
    assert counts == {"happy": 1, "neutral": 1}  # the blank image has no face and is skipped
    protos = load_prototypes(model)
    assert set(protos) == {"happy", "neutral"} and protos["happy"].shape == (14, 32)
    # the happy prototype is the astronaut's reference code
    ed = neural.load_editor(model, device="cpu")
    direct = ed.encode_reference(read_image(ASTRONAUT))
    torch.testing.assert_close(protos["happy"], direct.float(), atol=1e-5, rtol=1e-5)
    # a label / intensity becomes a blend of prototype codes
    ed.prepare(EmotionSpec.from_label("happy", 0.5))
    codes = ed._reference_codes([emotion_vector("happy", 1.0), emotion_vector("happy", 0.5)])
    torch.testing.assert_close(codes[0], protos["happy"])
    torch.testing.assert_close(codes[1], 0.5 * protos["happy"] + 0.5 * protos["neutral"])
    # and drives the edit: distinct prototypes give distinct faces, half-way lies in between
    g = torch.Generator().manual_seed(0)
    far = {"happy": 3 * torch.randn(14, 32, generator=g), "neutral": 3 * torch.randn(14, 32, generator=g)}
    ed2 = neural.NeuralEditor(ed.net, far, device="cpu")
    rgb, lm = hopper
    outs = {}
    for label, inten in (("happy", 1.0), ("neutral", 1.0), ("happy", 0.5)):
        ed2.prepare(EmotionSpec.from_label(label, inten))
        outs[label, inten] = ed2.edit([rgb], [face_frame(lm)], [emotion_vector(label, inten)])[0].astype(int)
    d_full = np.abs(outs["happy", 1.0] - outs["neutral", 1.0]).sum()
    assert d_full > 0
    assert np.abs(outs["happy", 0.5] - outs["neutral", 1.0]).sum() < d_full
    with pytest.raises(SSERDError, match="no emotion prototype for sad"):
        ed.prepare(EmotionSpec.from_label("sad"))


def test_bad_inputs_give_clear_errors(tiny_dir, tmp_path):
    ed = neural.load_editor(tiny_dir, device="cpu")
    with pytest.raises(NoFaceError, match="No face found in the reference"):
        ed.prepare(EmotionSpec.from_vector(emotion_vector("happy"), reference_rgb=np.full((80, 80, 3), 90, np.uint8)))
    (tmp_path / "refs" / "joyful_ish").mkdir(parents=True)
    with pytest.raises(SSERDError, match="not an emotion name"):
        neural.compute_prototypes(tmp_path / "refs", tiny_dir)
    with pytest.raises(SSERDError, match="not a SSERD model folder"):
        neural.load_editor(tmp_path)


# ------------------------------------------------------------------ whole pipeline
def _streams(path):
    """(decoded video frames, stream kinds, audio sample rate, decoded audio seconds) of a media file."""
    with av.open(str(path)) as c:
        n = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        kinds = [s.type for s in c.streams]
        if not c.streams.audio:
            return n, kinds, None, 0.0
        rate = c.streams.audio[0].sample_rate
        seconds = sum(f.samples for f in c.decode(audio=0)) / rate
        return n, kinds, rate, seconds


def test_edit_video_end_to_end_with_a_converted_checkpoint(tmp_path, ref_dir):
    from sserd_core.pipeline import EditOptions, edit_video

    torch.save(official_tiny_checkpoint(seed=2), tmp_path / "sserd_tiny.pt")
    model = tmp_path / "model"
    convert_checkpoint(tmp_path / "sserd_tiny.pt", model, input_size=TINY_INPUT)
    neural.compute_prototypes(ref_dir, model)
    editor = neural.load_editor(model, device="cpu", batch_size=4)
    assert editor.output_size == 256
    out = tmp_path / "out.mp4"
    res = edit_video(SAMPLE, out, EmotionSpec.from_label("happy", 0.8), EditOptions(end=1.0), editor=editor)
    with av.open(str(SAMPLE)) as c:
        fps = float(c.streams.video[0].average_rate)
        src_audio_rate = c.streams.audio[0].sample_rate
    n, kinds, rate, seconds = _streams(out)
    assert n == round(fps * 1.0) == res.render.n_frames
    assert "audio" in kinds and rate == src_audio_rate and res.has_audio
    assert abs(seconds - 1.0) < 0.15, seconds  # the source's audio for the edited second
    # the face was re-synthesised (the random network does not reproduce it), the rest kept
    with av.open(str(out)) as c_out, av.open(str(SAMPLE)) as c_in:
        f_out = next(c_out.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        f_in = next(c_in.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    lm = res.content.face_frame(0).landmarks
    x0, y0 = lm.min(0).astype(int)
    x1, y1 = lm.max(0).astype(int)
    diff = np.abs(f_out - f_in).mean(2)
    assert diff[y0:y1, x0:x1].mean() > 5 * (diff[: max(y0 - 40, 1)].mean() + 0.5)

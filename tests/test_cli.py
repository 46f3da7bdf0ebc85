"""The `sserd` command as a user runs it: help, a real edit, and readable errors on bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import SAMPLE, sample_frames, write_clip

from sserd_core import media


def sserd(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sserd_core.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_help_explains_every_option_with_examples():
    top = sserd("--help")
    assert top.returncode == 0 and "edit" in top.stdout
    h = sserd("edit", "--help").stdout
    for opt in ("--emotion", "--intensity", "--reference", "--curve", "--face-index", "--start", "--end",
                "--side-by-side", "--preview", "--model", "--plot"):
        assert opt in h, opt
    assert "examples:" in h and "sserd edit" in h and "happy" in h


def test_edit_writes_video_with_audio_side_by_side_and_previews(tmp_path):
    out = tmp_path / "sad.mp4"
    r = sserd("edit", SAMPLE, "-o", out, "--emotion", "sad", "--intensity", "0.8", "--end", "1",
              "--side-by-side", "--preview", "3")
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    # stderr is a pipe here, as in a log: one line per pass with its rate, not a bar's redraws
    passes = [line for line in r.stderr.splitlines() if " frames in " in line]
    assert [line.split(":")[0] for line in passes] == ["tracking face", "rendering"], r.stderr
    assert all(line.startswith(("tracking face: 25 frames", "rendering: 25 frames")) and "frames/s" in line
               for line in passes), passes
    assert "\r" not in r.stderr
    info = media.probe_video(out)
    assert info.n_frames == 25 and info.has_audio
    sbs = media.probe_video(tmp_path / "sad_side_by_side.mp4")
    assert (sbs.width, sbs.height) == (2 * info.width, info.height) and sbs.has_audio and sbs.n_frames == 25
    pngs = sorted((tmp_path / "sad_preview").glob("frame_?????.png"))
    assert len(pngs) == 3
    assert media.read_image(pngs[0]).shape == (info.height, info.width, 3)


def test_curve_and_reference_options(tmp_path):
    r = sserd("edit", SAMPLE, "-o", tmp_path / "c.mp4", "--curve", "0:neutral,0.5:surprised@0.7", "--end", "0.6", "-q")
    assert r.returncode == 0, r.stderr
    r = sserd("edit", SAMPLE, "-o", tmp_path / "r.mp4", "--reference", SAMPLE, "--end", "0.4", "-q")
    assert r.returncode == 0, r.stderr


def _fails(r, out, words):
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    err = [ln for ln in lines if ln.startswith("error:")]
    assert len(err) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert any(w.lower() in err[0].lower() for w in words), err[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if "partial" in p.name or p.name.startswith(".")]


def test_missing_file(tmp_path):
    out = tmp_path / "o.mp4"
    _fails(sserd("edit", tmp_path / "nope.mp4", "-o", out, "--emotion", "happy"), out, ["not found"])


def test_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    out = tmp_path / "o.mp4"
    _fails(sserd("edit", bad, "-o", out, "--emotion", "happy"), out, ["cannot read", "not", "video"])


def test_truncated_video(tmp_path):
    data = SAMPLE.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 3])  # the moov atom is at the end: nothing is decodable
    out = tmp_path / "o.mp4"
    _fails(sserd("edit", bad, "-o", out, "--emotion", "happy"), out, ["cannot read", "corrupt", "truncated"])


def test_corrupt_video(tmp_path):
    data = bytearray(SAMPLE.read_bytes())
    rng = np.random.default_rng(1)
    data[: 4096] = rng.integers(0, 255, 4096, dtype=np.uint8).tobytes()  # header destroyed
    bad = tmp_path / "garbled.mp4"
    bad.write_bytes(bytes(data))
    out = tmp_path / "o.mp4"
    _fails(sserd("edit", bad, "-o", out, "--emotion", "happy"), out, ["cannot read", "corrupt", "no video"])


def test_no_face_anywhere(tmp_path):
    rng = np.random.default_rng(0)
    frames = [(np.full((240, 320, 3), (60, 120, 200), np.uint8) + rng.integers(0, 20, (240, 320, 3), dtype=np.uint8), i / 25)
              for i in range(20)]
    src = write_clip(tmp_path / "sky.mp4", frames, (320, 240), audio=SAMPLE)
    out = tmp_path / "o.mp4"
    _fails(sserd("edit", src, "-o", out, "--emotion", "happy"), out, ["no face"])


def test_zero_frames(tmp_path):
    import av

    src = tmp_path / "empty.mkv"  # Matroska keeps a video track that has no frames
    a = media.read_audio(SAMPLE, 0, 1)
    with av.open(str(src), "w") as c:  # a video stream with no frames in it, plus audio
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        st = c.add_stream("aac", rate=a.sample_rate)
        st.layout = "mono"
        media.audio._encode_audio(c, st, a)
    assert src.exists()
    out = tmp_path / "o.mp4"
    _fails(sserd("edit", src, "-o", out, "--emotion", "happy"), out, ["no video frames", "contains no", "cannot read"])


def test_audio_only_file(tmp_path):
    import av

    src = tmp_path / "voice.m4a"

    a = media.read_audio(SAMPLE)
    with av.open(str(src), "w", format="mp4") as c:
        st = c.add_stream("aac", rate=a.sample_rate)
        st.layout = "mono"
        media.audio._encode_audio(c, st, a)
    out = tmp_path / "o.mp4"
    _fails(sserd("edit", src, "-o", out, "--emotion", "happy"), out, ["no video stream"])


def test_output_equal_to_input_is_refused(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(SAMPLE.read_bytes())
    before = src.read_bytes()
    r = sserd("edit", src, "-o", src, "--emotion", "happy")
    assert r.returncode != 0 and "input" in r.stderr and "error:" in r.stderr
    assert src.read_bytes() == before


def test_bad_options_are_explained(tmp_path):
    out = tmp_path / "o.mp4"
    _fails(sserd("edit", SAMPLE, "-o", out, "--emotion", "grumpy"), out, ["unknown emotion"])
    _fails(sserd("edit", SAMPLE, "-o", out, "--emotion", "happy", "--intensity", "3"), out, ["between 0 and 1"])
    _fails(sserd("edit", SAMPLE, "-o", out), out, ["--emotion"])
    _fails(sserd("edit", SAMPLE, "-o", out, "--curve", "0-happy"), out, ["TIME:EMOTION"])
    _fails(sserd("edit", SAMPLE, "-o", out, "--emotion", "happy", "--start", "3", "--end", "2"), out, ["after"])
    _fails(sserd("edit", SAMPLE, "-o", out, "--emotion", "happy", "--face-index", "3"), out, ["face"])
    _fails(sserd("edit", SAMPLE, "-o", tmp_path / "o.avi", "--emotion", "happy"), tmp_path / "o.avi", [".mp4"])


def test_no_audio_warns_and_writes_video_only(tmp_path):
    src = write_clip(tmp_path / "silent.mp4", sample_frames(SAMPLE, end=0.4), (448, 448))
    out = tmp_path / "o.mp4"
    r = sserd("edit", src, "-o", out, "--emotion", "happy")
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "no audio" in r.stderr
    assert out.exists() and not media.probe_video(out).has_audio


@pytest.mark.parametrize("text", ["0:neutral,2:happy@0.9", "0:joy, 1.5:sad@0.2 ,3:surprise@1"])
def test_curve_parsing(text):
    from sserd_core.emotion import EmotionSpec

    spec = EmotionSpec.from_curve(text)
    assert len(spec.keyframes) >= 2
    v = spec.at(1.0)
    assert abs(v.sum() - 1) < 1e-5 or v[1:].sum() >= 1


def test_info_describes_an_image_without_video_lines():
    from helpers import ASTRONAUT_FACE

    r = sserd("info", ASTRONAUT_FACE)
    assert r.returncode == 0, r.stderr
    assert "image 240x240, 1 face found" in r.stdout
    assert "emotion shown: happy" in r.stdout  # the astronaut smiles (README picture); measured, not assumed
    assert "fps" not in r.stdout and "frames" not in r.stdout


_NO_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
sys.meta_path.insert(0, _Block())
from sserd_core import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_without_torch_gpu_options_say_which_extra_to_install(tmp_path):
    out = tmp_path / "o.mp4"
    r = subprocess.run([sys.executable, "-c", _NO_TORCH, "edit", str(SAMPLE), "-o", str(out), "--emotion", "sad",
                        "--device", "cuda"], capture_output=True, text=True, timeout=300)
    _fails(r, out, ["comfyui-sserd[gpu]"])


def test_subcommand_help_is_consistent():
    """Every subcommand's one-line help starts in lower case and has no full stop, like argparse's own."""
    from sserd_core.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert {"edit", "info", "convert", "prototypes", "eval", "preprocess", "pairs", "train"} <= set(helps)
    for name, text in helps.items():
        assert text and text[0].islower() and not text.endswith("."), (name, text)
    r = sserd("eval", "--help")
    assert r.returncode == 0 and "``" not in r.stdout


def test_edit_flags_default_to_the_cores_edit_options():
    """`sserd edit`'s flags left out mean what EditOptions' defaults mean (the nodes and the Space use them too)."""
    from sserd_core.cli import build_parser
    from sserd_core.pipeline import EditOptions

    args = build_parser().parse_args(["edit", "in.mp4", "-o", "out.mp4", "--emotion", "sad"])
    d = EditOptions()
    assert (args.face_index, args.start, args.end, args.sync, args.device, args.threads, args.strict) == \
        (d.face_index, d.start, d.end, d.sync, d.device, d.threads, d.strict)
    assert args.intensity is None and d.intensity == 1.0  # no --intensity: the full emotion, as the help says
    assert args.model is None and d.backend == "landmark" and args.preview == d.preview_n == 0


def test_edit_refuses_a_still_image_with_a_hint(tmp_path):
    """A photo is not a clip: one line that says so and how to use it instead, and no 1-frame video written."""
    from PIL import Image

    from sserd_core import media

    photo = tmp_path / "photo.png"
    Image.fromarray(media.picture_of(SAMPLE)).save(photo)
    r = sserd("edit", photo, "-o", tmp_path / "out.mp4", "--emotion", "happy")
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "photo.png is a still image" in errors[0] and "--reference photo.png" in errors[0], \
        r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_progress_on_a_terminal_is_a_bar():
    """On a terminal the passes show tqdm bars (redrawn in place), in a log one line each."""
    import io

    from sserd_core.cli import _progress_factory

    class Tty(io.StringIO):
        def isatty(self):
            return True

    log = io.StringIO()
    p = _progress_factory(False, log)
    for i in range(1, 101):
        p("rendering", i, 100)
    p.close()
    assert log.getvalue().count("\n") == 1 and log.getvalue().startswith("rendering: 100 frames in ")
    assert _progress_factory(False, Tty()).__name__ == "progress" and _progress_factory(True, log)("x", 1, 1) is None


def test_neural_flags_reach_edit_options():
    """--dtype/--batch-size/--noise-mode/--max-face-size are EditOptions' neural fields (0 = automatic, as None)."""
    from sserd_core.cli import build_parser
    from sserd_core.pipeline import EditOptions

    args = build_parser().parse_args(["edit", "in.mp4", "-o", "out.mp4", "--emotion", "sad", "--model", "m",
                                      "--dtype", "bf16", "--batch-size", "16", "--noise-mode", "random",
                                      "--max-face-size", "256"])
    o = EditOptions(backend=args.model, dtype=args.dtype, batch_size=args.batch_size, noise_mode=args.noise_mode,
                    max_face_size=args.max_face_size)
    assert o.neural_options() == {"dtype": "bf16", "batch_size": 16, "noise_mode": "random", "max_face_size": 256}
    auto = EditOptions(dtype="auto", batch_size=0, max_face_size=0)
    assert auto.neural_options() == EditOptions().neural_options() == \
        {"dtype": None, "batch_size": None, "noise_mode": "zero", "max_face_size": None}
    h = sserd("edit", "--help").stdout
    assert "neural backend" in h and "landmark backend ignores" in h
    for flag in ("--dtype", "--batch-size", "--noise-mode", "--max-face-size"):
        assert flag in h, flag


@pytest.mark.parametrize("flag, value, words", [
    ("--batch-size", "-1", ["batch size", "between 1 and 256"]),
    ("--batch-size", "1000", ["between 1 and 256"]),
    ("--batch-size", "two", ["invalid int value"]),
    ("--max-face-size", "99999", ["maximum face size", "4096"]),
    ("--dtype", "fp8", ["invalid choice"]),
    ("--noise-mode", "loud", ["invalid choice"]),
])
def test_bad_neural_flags_are_one_line(tmp_path, flag, value, words):
    out = tmp_path / "o.mp4"
    _fails(sserd("edit", SAMPLE, "-o", out, "--emotion", "happy", flag, value), out, words)


def test_neural_flags_with_the_landmark_backend_warn_and_are_ignored(tmp_path):
    """The landmark editor has no network: the flags are said to be ignored (one warning line) and the job runs."""
    src = write_clip(tmp_path / "short.mp4", sample_frames(SAMPLE, end=0.2), (448, 448))
    out = tmp_path / "o.mp4"
    r = sserd("edit", src, "-o", out, "--emotion", "happy", "--dtype", "fp16", "--noise-mode", "random",
              "--max-face-size", "256", "-q")
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:") and "landmark backend ignores" in ln]
    assert len(warnings) == 1 and "--dtype, --noise-mode, --max-face-size" in warnings[0], r.stderr
    assert out.exists()
    r = sserd("edit", src, "-o", tmp_path / "o2.mp4", "--emotion", "happy", "--dtype", "auto", "-q")  # the default
    assert r.returncode == 0 and "ignores" not in r.stderr, r.stderr

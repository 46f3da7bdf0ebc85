"""One clip, one set of options, four front-ends: the ``sserd`` CLI, the Python API, a ComfyUI prompt
(real server) and the Space (real Gradio server) must give the same edited frames.

Every front-end translates its inputs into :class:`sserd_core.pipeline.EditOptions` and runs the one
job function, so the decoded frames are compared for equality, not closeness: the encoder is
deterministic (x264 ``cpu-independent``), and the ComfyUI server's venv has the same numpy/OpenCV/
PyAV/dlib versions as this one (checked below, since a different library build could move a pixel).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import comfyui_helpers as H
from generation_helpers import decode_rgb
from test_comfyui_server import edit_prompt, saved, server, two_face_prompt  # noqa: F401  (server: the module's fixture)

gradio_client = pytest.importorskip("gradio_client")
from space_helpers import start_space, stop_space  # noqa: E402

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]  # a real ComfyUI server and a real Space

LABEL, INTENSITY, START, END = "sad", 0.8, 0.4, 1.2
LIBS = "import numpy, cv2, av, dlib; print(numpy.__version__, cv2.__version__, av.__version__, dlib.__version__)"


def _frames(path: Path) -> np.ndarray:
    return np.stack(decode_rgb(path))


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    running = start_space(tmp_path_factory.mktemp("space"))
    yield running
    stop_space(running)


def test_cli_api_comfyui_and_space_give_the_same_frames(server, space, tmp_path):  # noqa: F811
    from gradio_client import Client, handle_file

    from sserd_core import pipeline

    clip = server.input_dir / "sample.mp4"  # the 2 s cut every front-end reads
    options = pipeline.EditOptions(emotion=LABEL, intensity=INTENSITY, start=START, end=END)
    outputs = {}

    # the Python API
    outputs["api"] = pipeline.edit(clip, tmp_path / "api.mp4", options).output

    # the CLI, in its own process, as a user types it
    cli_out = tmp_path / "cli.mp4"
    subprocess.run([sys.executable, "-m", "sserd_core.cli", "edit", str(clip), "-o", str(cli_out), "--emotion",
                    LABEL, "--intensity", str(INTENSITY), "--start", str(START), "--end", str(END), "-q"],
                   check=True, timeout=300, cwd=str(H.REPO))
    outputs["cli"] = cli_out

    # a ComfyUI prompt on the real server: Load Video's range, Extract Emotion's label and intensity
    prompt = edit_prompt("sample.mp4", LABEL, INTENSITY, prefix="agree/edit")
    prompt["1"]["inputs"].update(start_time=START, end_time=END)
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    outputs["comfyui"] = saved(server, entry)[0]

    # the Space on its own Gradio server, through gradio_client
    result = Client(space.url, verbose=False).submit(
        handle_file(str(clip)), "label", LABEL, INTENSITY, None, "", 0, START, END, "landmark", "",
        api_name="/edit").result(timeout=300)
    outputs["space"] = Path(result[0])
    _same_frames(server, clip, outputs)


def _same_frames(server, clip: Path, outputs: dict) -> None:
    """Every front-end's output has the API's frames, exactly (and the edit changed something)."""
    # same libraries on both sides, or equality could not be asked for
    here = subprocess.run([sys.executable, "-c", LIBS], capture_output=True, text=True, check=True).stdout
    there = subprocess.run([str(server.python), "-c", LIBS], capture_output=True, text=True, check=True).stdout
    assert here == there, f"this venv: {here} ComfyUI's venv: {there}"

    frames = {name: _frames(path) for name, path in outputs.items()}
    expected_n = round((END - START) * 25)
    ref = frames["api"]
    assert len(ref) == expected_n, len(ref)
    src = _frames(clip)[round(START * 25):round(END * 25)]
    assert np.abs(ref.astype(int) - src.astype(int)).mean() > 0.1, "the edit changed nothing"
    for name, got in frames.items():
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        diff = np.abs(got.astype(int) - ref.astype(int))
        assert diff.max() == 0, f"{name} differs from the API: mean {diff.mean():.3f}, max {diff.max()} grey levels"


#: expression controls: alone (on the source's own expression), and on top of a label
CONTROL_CASES = {"controls alone": (None, None, {"smile": -0.6, "brow_inner": 0.5}),
                 "label + controls": ("happy", 0.5, {"brow_lower": -0.3})}


@pytest.mark.parametrize("case", list(CONTROL_CASES))
def test_expression_controls_give_the_same_frames_everywhere(server, space, tmp_path, case):  # noqa: F811
    """The same controls from the API (EditOptions.controls), the CLI (--control), the Expression Controls node
    (its sliders, fed by Extract Emotion for the label) and the Space's controls section (its sliders and base
    emotion): the same frames."""
    from gradio_client import Client, handle_file

    import app
    from sserd_core import pipeline
    from sserd_core.controls import CONTROL_NAMES, format_controls

    label, intensity, values = CONTROL_CASES[case]
    text = format_controls([(0.0, np.array([values.get(n, 0.0) for n in CONTROL_NAMES], np.float32))])
    clip = server.input_dir / "sample.mp4"
    outputs = {}

    options = pipeline.EditOptions(emotion=label, intensity=intensity if label else pipeline.EditOptions.intensity,
                                   controls=text, start=START, end=END)
    api = pipeline.edit(clip, tmp_path / "api.mp4", options)
    outputs["api"] = api.output

    cli_out = tmp_path / "cli.mp4"
    base = ["--emotion", label, "--intensity", str(intensity)] if label else []
    subprocess.run([sys.executable, "-m", "sserd_core.cli", "edit", str(clip), "-o", str(cli_out), *base,
                    "--control", ", ".join(f"{k}={v}" for k, v in values.items()), "--start", str(START), "--end",
                    str(END), "-q"], check=True, timeout=300, cwd=str(H.REPO))
    outputs["cli"] = cli_out

    prompt = edit_prompt("sample.mp4", label or "happy", intensity or 1.0,
                         prefix="agree/controls_" + case.replace(" + ", "_").replace(" ", "_"))
    prompt["1"]["inputs"].update(start_time=START, end_time=END)
    prompt["9"] = {"class_type": "SSERD_ExpressionControls",
                   "inputs": {**{n: float(values.get(n, 0.0)) for n in CONTROL_NAMES}, "keyframes": "",
                              "preview_time": -1.0, **({"emotion": ["3", 0]} if label else {})}}
    if not label:
        del prompt["3"]
    prompt["4"]["inputs"]["emotion"] = ["9", 0]
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    outputs["comfyui"] = saved(server, entry)[0]

    result = Client(space.url, verbose=False).submit(
        handle_file(str(clip)), 0, START, END, "landmark", "", label or app.NO_BASE,
        intensity if label else pipeline.EditOptions.intensity, *[float(values.get(n, 0.0)) for n in CONTROL_NAMES],
        api_name="/render_controls").result(timeout=300)
    outputs["space"] = Path(result[0])
    assert f"**Target:** {api.emotion.describe()}" in result[3], result[3]  # the same target, said the same way
    _same_frames(server, clip, outputs)


def test_a_target_per_face_gives_the_same_frames_everywhere(server, tmp_path):  # noqa: F811
    """Two faces, face 0 happy and face 1 sad, on the generated two-face clip: ``EditOptions(faces=...)``, the CLI's
    ``--face-target``, ComfyUI's Add Face → Render Face and the Space's 'Other faces' give the same frames."""
    from gradio_client import Client, handle_file

    from sserd_core import pipeline

    clip = server.input_dir / "two_faces.mp4"  # made by the server fixture
    outputs = {"api": pipeline.edit(clip, tmp_path / "api.mp4",
                                    pipeline.EditOptions(emotion="happy", faces=("1=sad",))).output}
    cli_out = tmp_path / "cli.mp4"
    subprocess.run([sys.executable, "-m", "sserd_core.cli", "edit", str(clip), "-o", str(cli_out), "--emotion", "happy",
                    "--face-target", "1=sad", "-q"], check=True, timeout=300, cwd=str(H.REPO))
    outputs["cli"] = cli_out
    entry = server.run(two_face_prompt(prefix="agree/two_faces"))
    assert entry["status"]["status_str"] == "success", H.status_messages(entry)
    outputs["comfyui"] = saved(server, entry)[0]
    space = start_space(tmp_path / "space")
    try:
        result = Client(space.url, verbose=False).submit(
            handle_file(str(clip)), "label", "happy", 1.0, None, "", 0, None, None, "landmark", "", None,
            "auto", None, pipeline.EditOptions.noise_mode, None,  # the neural options, as the form shows them
            "1=sad", api_name="/edit").result(timeout=300)
        outputs["space"] = Path(result[0])
    finally:
        stop_space(space)
    frames = {name: _frames(path) for name, path in outputs.items()}
    ref = frames["api"]
    src = _frames(clip)
    assert len(ref) == len(src) and np.abs(ref[:, :, 448:].astype(int) - src[:, :, 448:]).mean() > 0.1
    for name, got in frames.items():
        assert got.shape == ref.shape and np.array_equal(got, ref), name

"""The Space as Hugging Face builds it on CPU hardware: the front matter of README.md, the root
requirements.txt plus the SDK's Gradio in a fresh venv (no torch, no CUDA wheel), and app.py
started from that venv serving an edit.

Slow on purpose (a real pip install, ~1.5 min with a warm pip cache), but part of the normal
run: CI builds exactly what the Space would, so a requirement that breaks the Space build
fails here first. Bounded to 4 minutes.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from space_helpers import (ARTIFACTS, ROOT, SAMPLE, build_space_venv, frames_in_range, front_matter,
                           start_space, stop_space, video_facts)

pytestmark = pytest.mark.slow  # a real pip install and a Space server

#: colours the Space card accepts
CARD_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
#: wheels a CPU Space must never pull
CUDA = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-[\w-]+|jax|jaxlib|tensorflow[\w-]*)$", re.I)


def test_front_matter_is_a_cpu_gradio_space():
    meta = front_matter()
    for key in ("title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "python_version", "app_file",
                "license", "short_description"):
        assert meta.get(key) not in (None, ""), f"front matter lacks {key}"
    assert meta["sdk"] == "gradio"
    import gradio

    assert str(meta["sdk_version"]) == gradio.__version__, "sdk_version must be the Gradio the app is tested with"
    assert str(meta["python_version"]) == "3.11"
    assert (ROOT / meta["app_file"]).is_file()
    assert meta["colorFrom"] in CARD_COLORS and meta["colorTo"] in CARD_COLORS
    assert len(meta["short_description"]) <= 60
    assert str(meta.get("suggested_hardware", "cpu-basic")).startswith("cpu")


def test_space_requirements_name_no_torch_or_cuda():
    names = [re.split(r"[<>=!~;\[ ]", line.split("#", 1)[0].strip(), maxsplit=1)[0]
             for line in (ROOT / "requirements.txt").read_text().splitlines() if line.split("#", 1)[0].strip()]
    assert names and not [n for n in names if CUDA.match(n)], names
    assert not [line for line in (ROOT / "requirements.txt").read_text().splitlines()
                if line.strip().startswith(("--index-url", "--extra-index-url", "-f", "--find-links"))]


@pytest.mark.timeout(240)
def test_space_builds_from_its_requirements_and_edits_on_cpu(tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    meta = front_matter()
    t0 = time.monotonic()
    python = build_space_venv(tmp_path / "venv", meta)
    t_pip = time.monotonic() - t0
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            check=True).stdout
    installed = {p["name"].lower(): p["version"] for p in json.loads(listed)}
    assert installed.get("gradio") == str(meta["sdk_version"])
    assert not [n for n in installed if CUDA.match(n)], sorted(n for n in installed if CUDA.match(n))
    space = start_space(tmp_path, python=str(python), SSERD_MAX_SECONDS=2)
    try:
        t1 = time.monotonic()
        client = gradio_client.Client(space.url, verbose=False)
        edited, _, plot, summary = client.predict(
            gradio_client.handle_file(str(SAMPLE)), "label", "sad", 0.9, None, "", 0, 0, 0.4, "landmark", "",
            api_name="/edit")
        t_edit = time.monotonic() - t1
        facts = video_facts(edited)
        assert facts.n_frames == frames_in_range(SAMPLE, 0, 0.4) and facts.has_audio
        assert plot.endswith(".png") and "audio carried over" in summary
        log = space.log()
        assert "Traceback" not in log, log[-3000:]
    finally:
        stop_space(space)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "space_deploy.json").write_text(json.dumps({
        "pip_seconds": round(t_pip, 1), "edit_seconds": round(t_edit, 1), "total_seconds": round(time.monotonic() - t0, 1),
        "packages": len(installed), "gradio": installed.get("gradio"), "torch": installed.get("torch")}, indent=1))

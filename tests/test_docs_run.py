"""The docs run (issue 16): every command and code block a user is meant to run, as written.

Every line of every ``bash``/``sh`` block and every ``python`` block in README.md and docs/*.md
is either run here — in a scratch folder that holds the repository's files and nothing else, as a user's
checkout does (the docs' examples name the shipped ``assets/``) — or listed in ``NOT_RUN`` with the reason it cannot run
offline on a CPU in CI (weights, datasets, a GPU, the network). A snippet that is added to the
docs without either fails this test, so a snippet that breaks fails CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, repo_files

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: substring of a doc line / block → why it is not run here (checked: every entry must still match a line)
NOT_RUN = {
    "python3.11 -m venv .venv": "the Quickstart installs: run as written by .ci/run (command 2) and, for the base "
                                "install, by tests/test_install.py",
    "cd ComfyUI/custom_nodes": "a user's ComfyUI checkout; the pack's install is tested by tests/test_comfyui_*.py",
    "git clone https://github.com/comfyui-sserd/comfyui-sserd": "needs the network",
    "python -m pip install -r comfyui-sserd/requirements.txt": "installs into a user's ComfyUI (tests/test_comfyui_*)",
    'pip install -e ".[space]"': "an install; the extras are installed by the test command",
    "sserd convert CHECKPOINT.pt": "needs a trained SSERD checkpoint (tests convert tiny ones: test_models_convert)",
    "--model models/sserd-mead": "needs a converted neural model",
    "sserd eval --data /data/MEAD": "needs the MEAD dataset",
    "--arcface models/w600k_r50.onnx": "needs MEAD and the metric networks' weights",
    "--outputs NED=/runs/ned_outputs": "needs MEAD and another tool's outputs",
    "accelerate launch --multi_gpu": "needs GPUs and MEAD",
    "torchrun --nproc_per_node 4 -m sserd_core.eval": "needs MEAD (tests/test_eval_e2e runs torchrun on the mini set)",
    "sserd eval study --manifest": "starts a long-running server (tests/test_eval_study drives it)",
    "sserd eval study-report --db": "needs votes from a study (tests/test_eval_study)",
    "python app.py": "starts the Space server (tests/test_space_app starts it)",
    "bash scripts/setup_comfycli_venv.sh": "installs comfy-cli into its own venv; tests/test_comfyui_registry.py runs it",
    "-m pytest tests/test_comfyui_pack.py": "the test suite itself",
    "-m pytest tests/test_space_plots.py": "the test suite itself",
    "from sserd_core.neural import load_editor": "needs a converted neural model",
    'editor = load_editor("models/sserd-mead")': "needs a converted neural model",
    "from gradio_client import Client": "needs a running Space (tests/test_space_app calls it with gradio_client)",
    "w = torch.randn(16, 8, 1, 1, requires_grad=True)": "reproduces a crash in torch's oneDNN on AVX-512 CPUs "
                                                         "(tests/test_train_losses runs the project's fixed layer)",
}

_COMMAND_START = ("sserd ", "python ", "python3", "pip ", "accelerate ", "torchrun ", "cd ", "git ", "bash ", ". ",
                  ".venv/")


def _blocks():
    """(doc, language, text) for every fenced bash/sh/python block."""
    for doc in DOCS:
        for m in re.finditer(r"```(\w*)\n(.*?)```", doc.read_text(), re.S):
            if m.group(1) in ("bash", "sh", "shell", "python"):
                yield doc, m.group(1), m.group(2)


def _snippets():
    """Runnable units: each command line of a shell block (continuations joined), each python block whole."""
    out = []
    for doc, lang, text in _blocks():
        if lang == "python":
            out.append((doc, lang, text))
            continue
        joined = re.sub(r"\\\n\s*", " ", text)
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#") and line.startswith(_COMMAND_START):
                out.append((doc, "bash", line))
                if " && sserd " in line:  # e.g. Quickstart 1: the install is tested elsewhere, the edit runs here
                    out.append((doc, "bash", "sserd " + line.split(" && sserd ", 1)[1]))
    return out


def _reason(text: str):
    return next((why for key, why in NOT_RUN.items() if key in text), None)


SNIPPETS = _snippets()
TO_RUN = [s for s in SNIPPETS if _reason(s[2]) is None]


def test_every_snippet_is_run_or_has_a_reason():
    assert SNIPPETS, "no snippets found: the extraction is broken"
    used = {key for key in NOT_RUN if any(key in s[2] for s in SNIPPETS)}
    stale = sorted(set(NOT_RUN) - used)
    assert not stale, f"NOT_RUN entries that match no doc line any more (remove them): {stale}"
    assert TO_RUN, "nothing runnable found"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    d = tmp_path_factory.mktemp("docs")
    repo_files(d)
    return d


def _id(s):
    doc, lang, text = s
    return f"{doc.name}:{text.splitlines()[0][:60]}"


@pytest.mark.parametrize("snippet", TO_RUN, ids=[_id(s) for s in TO_RUN])
def test_doc_snippet_runs_as_written(snippet, scratch):
    doc, lang, text = snippet
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    if lang == "python":
        r = subprocess.run([sys.executable, "-c", text], cwd=scratch, capture_output=True, text=True, timeout=900,
                           env=env)
    else:
        cmd = text.replace("/tmp/", f"{scratch}/tmp_")  # keep the docs' /tmp examples inside the scratch folder
        r = subprocess.run(["bash", "-c", cmd], cwd=scratch, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, f"{doc.name}: `{text.strip()[:200]}` failed:\n{r.stdout[-1500:]}\n{r.stderr[-3000:]}"

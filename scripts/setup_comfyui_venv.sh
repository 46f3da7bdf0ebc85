#!/usr/bin/env bash
# Create (or reuse) the Python environment that runs a real ComfyUI server for
# tests/test_comfyui_*.py — the environment a ComfyUI user has: PyPI torch + torchvision
# of one release, ComfyUI's own requirements, and this pack's requirements.txt installed
# the way ComfyUI-Manager installs them (pip -r requirements.txt, not the package itself).
#
#   COMFYUI_DIR   ComfyUI source tree           (default: <repo>/../shared/comfyui)
#   COMFYUI_VENV  where the venv goes           (default: <repo>/.venv-comfyui)
#   PYTHON        interpreter for the venv      (default: python3)
#
# Idempotent: a stamp file records a hash of everything that went in; a second run with
# the same inputs returns at once. Safe to call from a pytest session fixture.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMFYUI_DIR="${COMFYUI_DIR:-$REPO/../shared/comfyui}"
VENV="${COMFYUI_VENV:-$REPO/.venv-comfyui}"
PYTHON="${PYTHON:-python3}"
# torch / torchvision must come from the same release (a CPU torch beside PyPI's CUDA
# torchvision fails with "operator torchvision::nms does not exist"); the CUDA build runs
# fine with --cpu on a machine without a GPU.
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)

if [ ! -f "$COMFYUI_DIR/main.py" ]; then
    echo "setup_comfyui_venv: no ComfyUI at $COMFYUI_DIR (set COMFYUI_DIR)" >&2
    exit 2
fi

# The 'neural' extra of pyproject.toml (diffusers, huggingface_hub, safetensors): what a
# user adds to run neural SSERD checkpoints; the tests load a tiny one through Load Model.
NEURAL_EXTRA="$("$PYTHON" -c "import sys, tomllib; print(' '.join(tomllib.load(open(sys.argv[1], 'rb'))['project']['optional-dependencies']['neural']))" "$REPO/pyproject.toml")"

inputs_hash="$( { echo "${TORCH_PINS[*]} $NEURAL_EXTRA"; cat "$COMFYUI_DIR/requirements.txt" "$REPO/requirements.txt" "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)"
stamp="$VENV/.sserd-venv-ready"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs_hash" ]; then
    echo "setup_comfyui_venv: $VENV is ready"
    exit 0
fi

start=$(date +%s)
echo "setup_comfyui_venv: creating $VENV for ComfyUI at $COMFYUI_DIR"
"$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# (pip warns once per package about this machine's local file:// index; that is noise)
exec 2> >(grep -v --line-buffered "is ignored: it is neither a file nor a directory" >&2)
"${pip[@]}" "${TORCH_PINS[@]}"
# ComfyUI's requirements without the torch family: torch/torchvision are pinned above and
# torchaudio is left out on purpose (only core nodes_audio.py needs it; SSERD reads and
# writes audio with PyAV, and the tests use no core audio node).
grep -v -i -E '^\s*(torch|torchvision|torchaudio)\s*($|[<>=!~;#])' "$COMFYUI_DIR/requirements.txt" > "$VENV/comfyui-requirements.txt"
# requests: ComfyUI imports it without listing it.
"${pip[@]}" "${TORCH_PINS[@]}" -r "$VENV/comfyui-requirements.txt" requests
# This pack, as ComfyUI-Manager installs it.
"${pip[@]}" "${TORCH_PINS[@]}" -r "$REPO/requirements.txt"
# shellcheck disable=SC2086
"${pip[@]}" "${TORCH_PINS[@]}" $NEURAL_EXTRA
"$VENV/bin/python" - <<'PY'
import torch, torchvision, av, cv2, dlib, numpy, diffusers
from torchvision.ops import nms  # the check that fails on a mismatched torch/torchvision
print(f"setup_comfyui_venv: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"numpy {numpy.__version__}, av {av.__version__}, opencv {cv2.__version__}, dlib {dlib.__version__}")
PY
echo "$inputs_hash" > "$stamp"
echo "setup_comfyui_venv: done in $(( $(date +%s) - start )) s"

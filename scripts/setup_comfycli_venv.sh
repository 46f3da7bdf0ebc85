#!/usr/bin/env bash
# Create (or reuse) a venv with comfy-cli, the Comfy registry's command line (`comfy node validate`,
# `comfy node pack`, `comfy node publish`), kept apart from the project's and ComfyUI's environments.
# tests/test_comfyui_registry.py calls this; prints the venv's `comfy` executable on the last line.
#
#   COMFYCLI_VENV   where the venv goes   (default: ~/.cache/comfyui-sserd/venv-comfycli)
#   COMFYCLI_SPEC   what pip installs     (default: comfy-cli==1.23.0)
#   PYTHON          interpreter           (default: python3)
#
# Idempotent: a stamp records the spec; a second run with the same spec returns at once.
set -euo pipefail

VENV="${COMFYCLI_VENV:-$HOME/.cache/comfyui-sserd/venv-comfycli}"
SPEC="${COMFYCLI_SPEC:-comfy-cli==1.23.0}"
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.sserd-comfycli-ready"

if [ -x "$VENV/bin/comfy" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$SPEC" ]; then
    echo "$VENV/bin/comfy"
    exit 0
fi
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
# (pip warns once per package about this machine's local file:// index; that is noise)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$SPEC" 2> >(grep -v "is ignored: it is neither" >&2)
"$VENV/bin/comfy" --version >&2
echo "$SPEC" > "$stamp"
echo "$VENV/bin/comfy"

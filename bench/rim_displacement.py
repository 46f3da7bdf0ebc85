#!/usr/bin/env python3
"""How far an edit moves a glasses frame: dense optical flow on hand-traced rims, in inter-ocular units.

A glasses frame is rigid: an expression edit may move the face behind it but should leave the
frame where the source had it. This measure does not use any detector of the product: the rims
are polylines traced by eye on a few keyframes of the source clip (``assets/real/annotations/<clip>.json``,
see ``assets/README.md``), and on each keyframe

1. dense optical flow (OpenCV DIS, ``PRESET_MEDIUM``, grey) is computed from the decoded
   source frame to the same decoded frame of the edit;
2. the flow magnitude is read on the rim pixels (the polylines rasterised ``line_width_px``
   wide, 2 px by default);
3. it is divided by that source frame's inter-ocular distance (dlib 68 points: distance of the
   two eye centres, the mean of points 36-41 and 42-47).

The clip's figure is the 95th percentile of those normalised magnitudes pooled over all rim
pixels of all keyframes (``p95_iod``); each keyframe's own p95 and median are reported too.
A plain re-encode reads about 0.001-0.005, a 3 px shift of the whole frame 3 px / IOD.

    python bench/rim_displacement.py assets/sample_hopper.mp4 edited.mp4      # annotations found by clip name
    python bench/rim_displacement.py SRC EDIT --annotations assets/real/annotations/sample_hopper.json --json
    python bench/rim_displacement.py assets/sample_hopper.mp4 --validate       # re-encode and 3 px shift checks
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ANNOTATIONS = ROOT / "assets" / "real" / "annotations"


def annotations_for(clip: str | Path) -> Path | None:
    """The annotation file of a clip (``assets/real/annotations/<clip stem>.json``), or None."""
    p = ANNOTATIONS / f"{Path(clip).stem}.json"
    return p if p.exists() else None


def load_annotations(path: str | Path) -> dict:
    """``{"keyframes": {frame: {name: [[x, y], ...]}}, "line_width_px": w, ...}`` with int frame keys."""
    doc = json.loads(Path(path).read_text())
    doc["keyframes"] = {int(k): v for k, v in doc["keyframes"].items()}
    return doc


def decode_frames(path: str | Path, frames) -> dict[int, np.ndarray]:
    """The RGB frames with these (0-based, decode-order) numbers."""
    import av

    want, out = set(int(f) for f in frames), {}
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for i, f in enumerate(c.decode(s)):
            if i in want:
                out[i] = f.to_ndarray(format="rgb24")
                if len(out) == len(want):
                    break
    missing = want - set(out)
    if missing:
        raise ValueError(f"{path}: has no frame {min(missing)} (the annotations need frames {sorted(want)})")
    return out


def rim_mask(polylines: dict, shape: tuple[int, int], width: int = 2) -> np.ndarray:
    """The polylines rasterised ``width`` px wide (sub-pixel vertices, no anti-aliasing), as a bool mask."""
    import cv2

    m = np.zeros(shape, np.uint8)
    shift = 4  # vertices in 1/16 px
    for pts in polylines.values():
        p = np.round(np.asarray(pts, np.float64) * (1 << shift)).astype(np.int32)
        cv2.polylines(m, [p], False, 1, thickness=max(1, int(width)), lineType=cv2.LINE_8, shift=shift)
    return m.astype(bool)


_DLIB = None


def inter_ocular(rgb: np.ndarray) -> float:
    """Distance of dlib's two eye centres (68 points: 36-41, 42-47) of the largest face, in px."""
    global _DLIB
    import cv2
    import dlib
    import face_recognition_models as frm

    if _DLIB is None:
        _DLIB = (dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location()))
    det, pred = _DLIB
    s = min(1.0, 320 / rgb.shape[0])
    small = rgb if s == 1.0 else cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    rects = det(small, 0) or det(small, 1)
    if len(rects) == 0:
        raise ValueError("no face found by dlib on a keyframe of the source: choose keyframes with the face visible")
    r = max(rects, key=lambda r: r.width() * r.height())
    r = dlib.rectangle(int(r.left() / s), int(r.top() / s), int(r.right() / s), int(r.bottom() / s))
    sh = pred(rgb, r)
    lm = np.array([[p.x, p.y] for p in sh.parts()], np.float64)
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


def dense_flow(src_rgb: np.ndarray, dst_rgb: np.ndarray) -> np.ndarray:
    """HxWx2 flow (px) from ``src`` to ``dst``: DIS optical flow on grey, OpenCV's medium preset."""
    import cv2

    a = cv2.cvtColor(src_rgb, cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(dst_rgb, cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(a, b, None)


def rim_displacement(source: dict[int, np.ndarray], edited: dict[int, np.ndarray], annotations: dict) -> dict:
    """Rim displacement of an edit. ``source`` / ``edited``: keyframe number -> RGB frame (the
    annotation's keyframes); ``annotations``: as :func:`load_annotations` returns.

    Returns ``{"p95_iod", "p95_px", "median_iod", "keyframes": {n: {...}}, "rim_pixels"}``."""
    width = int(annotations.get("line_width_px", 2))
    pooled, pooled_px, per = [], [], {}
    for n, polys in sorted(annotations["keyframes"].items()):
        s, e = source[n], edited[n]
        if s.shape != e.shape:
            raise ValueError(f"frame {n}: the edit is {e.shape[1]}x{e.shape[0]}, the source {s.shape[1]}x{s.shape[0]}")
        mask = rim_mask(polys, s.shape[:2], width)
        mag = np.linalg.norm(dense_flow(s, e), axis=2)[mask]
        iod = inter_ocular(s)
        pooled.append(mag / iod)
        pooled_px.append(mag)
        per[n] = {"iod_px": iod, "rim_pixels": int(mask.sum()), "p95_px": float(np.percentile(mag, 95)),
                  "median_px": float(np.median(mag)), "p95_iod": float(np.percentile(mag, 95) / iod)}
    allv, allpx = np.concatenate(pooled), np.concatenate(pooled_px)
    return {"p95_iod": float(np.percentile(allv, 95)), "p95_px": float(np.percentile(allpx, 95)),
            "median_iod": float(np.median(allv)), "rim_pixels": int(allv.size), "keyframes": per}


def measure_clip(source: str | Path, edited: str | Path, annotations: str | Path | None = None,
                 max_frames: int | None = None) -> dict:
    """:func:`rim_displacement` of two video files (decoded with PyAV). ``max_frames``: only the
    keyframes among the first ``max_frames`` frames (for an edit of the clip's beginning)."""
    ann_path = annotations or annotations_for(source)
    if ann_path is None:
        raise FileNotFoundError(f"no rim annotations for {Path(source).name}: trace them into "
                                f"{ANNOTATIONS / (Path(source).stem + '.json')} (see assets/README.md)")
    ann = load_annotations(ann_path)
    if max_frames is not None:
        ann["keyframes"] = {n: v for n, v in ann["keyframes"].items() if n < max_frames}
        if not ann["keyframes"]:
            raise ValueError(f"no annotated keyframe among the first {max_frames} frames of {Path(source).name}")
    frames = list(ann["keyframes"])
    return rim_displacement(decode_frames(source, frames), decode_frames(edited, frames), ann)


def shifted(frames: dict[int, np.ndarray], dx: float, dy: float = 0.0) -> dict[int, np.ndarray]:
    """The frames translated by (dx, dy) px (bilinear, borders replicated): a synthetic rigid move."""
    import cv2

    M = np.float32([[1, 0, dx], [0, 1, dy]])
    return {n: cv2.warpAffine(f, M, (f.shape[1], f.shape[0]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE) for n, f in frames.items()}


def reencode(src: str | Path, dst: str | Path) -> None:
    """A plain re-encode with the product writer's settings (libx264 CRF 18 ``veryfast``, yuv420p)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-map", "0:v:0", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", str(dst)], check=True)


def validate(source: str | Path, annotations: str | Path | None = None, shift_px: float = 3.0) -> dict:
    """The measure's own checks on a clip: identical frames, a plain re-encode, a ``shift_px`` shift."""
    ann = load_annotations(annotations or annotations_for(source))
    frames = list(ann["keyframes"])
    src = decode_frames(source, frames)
    out = {"identical": rim_displacement(src, src, ann)}
    with tempfile.TemporaryDirectory() as td:
        re_path = Path(td) / "reencode.mp4"
        reencode(source, re_path)
        out["reencode"] = rim_displacement(src, decode_frames(re_path, frames), ann)
    out["shift"] = rim_displacement(src, shifted(src, shift_px), ann)
    iods = [k["iod_px"] for k in out["shift"]["keyframes"].values()]
    out["shift"]["expected_iod"] = float(np.median([shift_px / i for i in iods]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("edited", nargs="?")
    ap.add_argument("--annotations", help="default: assets/real/annotations/<source stem>.json")
    ap.add_argument("--validate", action="store_true", help="check the measure on SOURCE: re-encode, 3 px shift")
    ap.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = ap.parse_args(argv)
    if args.validate:
        r = validate(args.source, args.annotations)
        if args.json:
            print(json.dumps(r, indent=1))
            return
        print(f"identical frames : p95 {r['identical']['p95_iod']:.4f} IOD")
        print(f"plain re-encode  : p95 {r['reencode']['p95_iod']:.4f} IOD ({r['reencode']['p95_px']:.2f} px)")
        print(f"3 px shift       : p95 {r['shift']['p95_iod']:.4f} IOD, median {r['shift']['median_iod']:.4f} "
              f"(3 px / IOD = {r['shift']['expected_iod']:.4f})")
        return
    if not args.edited:
        ap.error("give the edited clip (or --validate)")
    try:
        r = measure_clip(args.source, args.edited, args.annotations)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    if args.json:
        print(json.dumps(r, indent=1))
        return
    for n, k in r["keyframes"].items():
        print(f"frame {n:>4}: p95 {k['p95_iod']:.4f} IOD ({k['p95_px']:.2f} px, IOD {k['iod_px']:.1f} px, "
              f"{k['rim_pixels']} rim px)")
    print(f"rim displacement p95: {r['p95_iod']:.4f} IOD ({r['p95_px']:.2f} px) over {r['rim_pixels']} rim pixels")


if __name__ == "__main__":
    sys.exit(main())

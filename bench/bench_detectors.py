"""How far the official detection path (MTCNN, ``--detector mtcnn``) moves the training crops from the default
(dlib tracker), on real clips.

    python bench/bench_detectors.py                       # the project's real clips, 48 frames each
    python bench/bench_detectors.py --frames 100 clip.mp4 ...

Per frame, both paths give 68 landmarks; each is aligned exactly as ``sserd preprocess`` does (SSERD's template,
256 px). Reported per clip: how far the MTCNN crop's pixel grid lies from the dlib crop's (mean displacement of
the crop's pixels, in 256-crop px), the scale and rotation between them, and the mean absolute difference of
the two crops' pixels (0–255). Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def compare(path: str, n: int, size: int = 256) -> dict:
    from sserd_core.face import FaceTracker
    from sserd_core.media import iter_frames, probe_video
    from sserd_core.neural import align_face
    from sserd_core.neural.align import compose_affine, invert_affine
    from sserd_core.train.mtcnn import official_landmarks

    info = probe_video(path)
    frames = []
    tracker = FaceTracker(info.fps_float, smooth=False)
    dl = []
    for fr in iter_frames(info):
        frames.append(fr.rgb)
        dl.append(tracker.update(fr.rgb))
        if len(frames) >= n:
            break
    mt = official_landmarks(frames)
    disp, scale, rot, mad = [], [], [], []
    yy, xx = np.mgrid[0:size:8, 0:size:8]
    grid = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float64)
    for rgb, a, b in zip(frames, dl, mt):
        if a is None or b is None:
            continue
        ca, ma = align_face(rgb, a, size, "sserd-template")
        cb, mb = align_face(rgb, b, size, "sserd-template")
        rel = compose_affine(mb, invert_affine(ma))  # dlib-crop px → mtcnn-crop px
        moved = grid @ rel[:, :2].T + rel[:, 2]
        disp.append(float(np.linalg.norm(moved - grid, axis=1).mean()))
        scale.append(float(np.sqrt(abs(np.linalg.det(rel[:, :2])))))
        rot.append(float(np.degrees(np.arctan2(rel[1, 0], rel[0, 0]))))
        mad.append(float(np.abs(ca.astype(np.int16) - cb.astype(np.int16)).mean()))
    k = len(disp)
    return dict(clip=Path(path).name, frames=len(frames), both_found=k,
                displacement_px=round(float(np.mean(disp)), 2) if k else None,
                displacement_px_max=round(float(np.max(disp)), 2) if k else None,
                scale=round(float(np.mean(scale)), 4) if k else None,
                rotation_deg=round(float(np.mean(np.abs(rot))), 2) if k else None,
                pixel_mad=round(float(np.mean(mad)), 2) if k else None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--frames", type=int, default=48)
    args = ap.parse_args(argv)
    clips = args.clips or [str(p) for p in sorted((ROOT / "assets" / "real").glob("*.mp4"))]
    rows = []
    for c in clips:
        rows.append(compare(c, args.frames))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print("| clip | frames (both found) | crop grid displacement, mean / max (256-crop px) | scale | |rotation| ° "
          "| pixel MAD (0–255) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['clip']} | {r['frames']} ({r['both_found']}) | {r['displacement_px']} / {r['displacement_px_max']} "
              f"| {r['scale']} | {r['rotation_deg']} | {r['pixel_mad']} |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

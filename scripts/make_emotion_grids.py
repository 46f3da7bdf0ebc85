#!/usr/bin/env python3
"""One picture per real clip: the source frame and the 7 emotions at intensity 1, same frame.

    python scripts/make_emotion_grids.py                    # every clip in assets/real/ -> docs/images/grid_<clip>.png
    python scripts/make_emotion_grids.py --clips smile,sad --out-dir /tmp/grids
    python scripts/make_emotion_grids.py --frame smile=60   # choose the frame (index in the clip)

Each edit runs the product's API on the whole clip (``load_video`` → ``disentangle_content``
→ ``render_face`` per emotion, as ``sserd edit`` does) and keeps the chosen frame, so the
picture shows what a video edit shows at that moment (temporal smoothing included). The
tiles are the face region (from the tracked landmarks of the source frame, with margin),
the same crop in every tile; the caption is the label asked for.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "assets" / "real"
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fear", "disgusted")
#: default frame per clip: a representative moment (smile: broad laugh; speaker: still neutral, before he smiles)
FRAMES = {"smile": 60, "sad": 30, "occluded": 36, "speaker": 8}
TILE = 256


def caption(img: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((24, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([img, bar], 0)


def face_crop(lm: np.ndarray, shape) -> tuple[slice, slice]:
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.12 * (y1 - y0)  # include the forehead
    half = 0.78 * max(x1 - x0, y1 - y0)
    h, w = shape[:2]
    half = min(half, cx, cy, w - cx, h - cy, min(h, w) / 2)
    return slice(int(cy - half), int(cy + half)), slice(int(cx - half), int(cx + half))


def grid(clip: str, frame: int, pipeline, media, work: Path) -> np.ndarray:
    path = REAL / f"real_{clip}.mp4"
    video = pipeline.load_video(path)
    content = pipeline.disentangle_content(video)
    frame = min(frame, content.n_frames - 1)
    src = next(f.rgb for f in media.iter_frames(video) if f.index == frame)
    face = content.face_frame(frame)
    if face is None:
        raise SystemExit(f"{clip}: no tracked face at frame {frame}; choose another with --frame {clip}=N")
    ys, xs = face_crop(np.asarray(face.landmarks), src.shape)

    def tile(rgb, text):
        return caption(cv2.resize(np.ascontiguousarray(rgb[ys, xs]), (TILE, TILE), interpolation=cv2.INTER_AREA), text)

    tiles = [tile(src, "source")]
    for emo in EMOTIONS:
        got = {}
        pipeline.render_face(content, pipeline.extract_emotion(emo, 1.0), work / f"{clip}_{emo}.mp4",
                             frame_sink=lambda i, rgb: got.__setitem__(i, rgb) if i == frame else None)
        tiles.append(tile(got[frame], f"{emo} 1.0"))
        print(f"  {clip}: {emo}", file=sys.stderr, flush=True)
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    rows = []
    for r in range(2):
        row = []
        for t in tiles[4 * r: 4 * r + 4]:
            row += [t, gap]
        rows.append(np.concatenate(row[:-1], 1))
    hgap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([rows[0], hgap, rows[1]], 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default="", help="comma list (default: every clip in assets/real/clips.json)")
    ap.add_argument("--frame", action="append", default=[], help="CLIP=INDEX (repeatable)")
    ap.add_argument("--out-dir", default=str(ROOT / "docs" / "images"))
    ap.add_argument("--product-root", default=str(ROOT),
                    help="import sserd_core from this tree (e.g. a `git archive` of an older commit); default: this checkout")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.product_root).resolve()))
    from sserd_core import media, pipeline
    print(f"product code: {Path(pipeline.__file__).parent.parent}", file=sys.stderr)

    names = [k.removeprefix("real_") for k in json.loads((REAL / "clips.json").read_text())]
    clips = [c.strip() for c in args.clips.split(",") if c.strip()] or names
    frames = dict(FRAMES)
    for f in args.frame:
        k, v = f.split("=")
        frames[k] = int(v)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sserd_grid_") as td:
        for clip in clips:
            img = grid(clip, frames.get(clip, 0), pipeline, media, Path(td))
            media.write_image(out / f"grid_{clip}.png", img)
            print(f"wrote {out / f'grid_{clip}.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()

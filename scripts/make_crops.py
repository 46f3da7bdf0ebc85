#!/usr/bin/env python3
"""1:1 crops of eyes, brows + forehead and mouth: the source and every emotion, before and after.

Reads the edited clips that ``bench/bench_edit_strength.py --keep DIR`` leaves
(``DIR/<clip>__<emotion>__1.0.mp4``), one folder per version of the product, and writes, per clip,
``docs/images/crops_<clip>.png``: three blocks (eyes with any glasses, brows and forehead, mouth),
each a row per version (source, then the seven emotions at intensity 1), every tile at the
clip's own pixels (1:1, no scaling), taken from one frame.

    python bench/bench_edit_strength.py --intensities 1.0 --keep /tmp/after
    python bench/bench_edit_strength.py --intensities 1.0 --keep /tmp/before --product-root /tmp/old-tree
    python scripts/make_crops.py --version after=/tmp/after --version before=/tmp/before
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fear", "disgusted")
CLIPS = {"speaker": (ROOT / "assets/real/real_speaker.mp4", 10), "smile": (ROOT / "assets/real/real_smile.mp4", 30),
         "sad": (ROOT / "assets/real/real_sad.mp4", 20), "occluded": (ROOT / "assets/real/real_occluded.mp4", 36),
         "hopper": (ROOT / "assets/sample_hopper.mp4", 30),
         "glasses_metal": (ROOT / "assets/real/real_glasses_metal.mp4", 96)}


def frame(path: Path, index: int) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return np.ascontiguousarray(f.to_ndarray(format="rgb24"))
    raise SystemExit(f"{path} has no frame {index}")


def regions(lm: np.ndarray) -> dict:
    """``{name: (x0, y0, x1, y1)}`` frame px: eyes (with glasses), brows + forehead, mouth."""
    eye_r, eye_l = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = float(np.linalg.norm(eye_l - eye_r))
    ey = (eye_r[1] + eye_l[1]) / 2
    x0, x1 = lm[36, 0] - 0.4 * iod, lm[45, 0] + 0.4 * iod
    brow_top = lm[17:27, 1].min()
    m0, m1 = lm[48:60].min(0), lm[48:60].max(0)
    out = {"eyes": (x0, ey - 0.38 * iod, x1, ey + 0.42 * iod),
           "brows + forehead": (x0, brow_top - 0.55 * iod, x1, ey - 0.05 * iod),
           "mouth": (m0[0] - 0.35 * iod, m0[1] - 0.35 * iod, m1[0] + 0.35 * iod, m1[1] + 0.3 * iod)}
    return {k: tuple(int(round(v)) for v in b) for k, b in out.items()}


def crop(rgb: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    h, w = rgb.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


def label(tile: np.ndarray, text: str) -> np.ndarray:
    band = np.full((16, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([band, tile])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", action="append", required=True, metavar="NAME=DIR",
                    help="a version's folder of kept benchmark clips (repeat; shown top to bottom)")
    ap.add_argument("--clips", default=",".join(CLIPS))
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "images")
    args = ap.parse_args()
    from sserd_core.face import detect_landmarks

    versions = [v.split("=", 1) for v in args.version]
    for clip in args.clips.split(","):
        path, index = CLIPS[clip]
        src = frame(path, index)
        lms = detect_landmarks(src)
        if not lms:
            raise SystemExit(f"no face on {clip} frame {index}")
        blocks = []
        for name, box in regions(lms[0]).items():
            rows = []
            for vname, folder in versions:
                tiles = [label(crop(src, box), "source")]
                for emo in EMOTIONS:
                    f = Path(folder) / f"{clip}__{emo}__1.0.mp4"
                    tiles.append(label(crop(frame(f, index), box), emo) if f.exists()
                                 else label(np.zeros_like(crop(src, box)), f"{emo}: missing"))
                row = np.hstack([np.pad(t, ((0, 0), (0, 2), (0, 0)), constant_values=255) for t in tiles])
                head = np.full((18, row.shape[1], 3), 235, np.uint8)
                cv2.putText(head, f"{clip}, frame {index}: {name} - {vname}", (3, 13), cv2.FONT_HERSHEY_SIMPLEX,
                            0.42, (0, 0, 0), 1, cv2.LINE_AA)
                rows.append(np.vstack([head, row]))
            blocks.append(np.vstack(rows + [np.full((6, rows[0].shape[1], 3), 255, np.uint8)]))
        width = max(b.shape[1] for b in blocks)
        img = np.vstack([np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=255) for b in blocks])
        out = args.out_dir / f"crops_{clip}.png"
        cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        print(f"wrote {out} ({img.shape[1]}x{img.shape[0]})")


if __name__ == "__main__":
    main()

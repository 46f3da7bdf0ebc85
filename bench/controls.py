#!/usr/bin/env python3
"""Every expression control at its extremes on real footage: is the speech kept, does the part move, is the
person the same, and how much of the control the believability bounds let through.

For each clip and each control at −1 and +1 (nothing else asked for: the source's own expression with that
control on top) the clip is rendered and measured on the *decoded output* by models that did not make it:

- **mouth r (dlib)**: correlation over frames of the inner-lip opening, dlib's 68 points fitted afresh on the
  source and on the output (the edit is driven by dlib's points on the source, not on the output);
- **mouth r (face-api)**: the same with face-api.js's 68-point landmark net (another model, other training
  data; ``tests/faceapi_landmarks.py``), where its weights are in ``tests/data``;
- **moved**: the change of the feature the control is about (IOD; re-detected dlib points, mean over frames);
- **same person**: the share of sampled frames whose dlib face-recognition distance to the source frame is
  under 0.6 (dlib's same-person threshold);
- **shown**: the median share of the control's motion the bounds let through (the render's own report).

It also writes ``docs/images/controls_grid.png``: the face of one frame of the speaker clip at −1, +0.5 and
+1 of each control, beside the source (the face's crop at half its pixels; ``--grid-scale 1`` for 1:1).

    python bench/controls.py                       # all clips, table to bench/results/controls.md
    python bench/controls.py --clips speaker --no-grid
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import feature, features, frames, mouth_openings, redetect  # noqa: E402

from sserd_core import pipeline  # noqa: E402
from sserd_core.controls import CONTROL_NAMES, CONTROLS  # noqa: E402
from sserd_core.face import detect_landmarks, face_embedding  # noqa: E402

CLIPS = {"speaker": ROOT / "assets/real/real_speaker.mp4", "smile": ROOT / "assets/real/real_smile.mp4",
         "hopper": ROOT / "assets/sample_hopper.mp4"}
#: the feature each control is about and the sign of its change at +1 (sserd_core.expression.FEATURES)
MOVES = {"brow_inner": ("inner_brow", +1), "brow_outer": ("outer_brow", +1), "brow_lower": ("brow_gap", -1),
         "lid_raise": ("upper_lid", +1), "lid_tighten": ("lower_lid", +1), "squint": ("upper_lid", -1),
         "cheek_raise": ("lower_lid", +1), "nose_wrinkle": ("nose_wing", +1), "smile": ("lip_corner", +1),
         "corners_down": ("lip_corner", -1), "lip_stretch": ("mouth_width", +1), "lip_press": ("mouth_width", -1),
         "chin_raise": ("lower_lip", +1)}


def _lower_lip(landmarks: np.ndarray) -> np.ndarray:
    """The lower lip's outer edge (57) above the inner lips' centre (IOD; bigger = higher), per frame."""
    from sserd_core.geometry import to_canonical

    out = []
    for lm in landmarks:
        X = to_canonical(lm)
        out.append((X[62, 1] + X[66, 1]) / 2 - X[57, 1])
    return np.array(out, np.float64)


def _moved(name: str, src_lm: np.ndarray, out_lm: np.ndarray) -> float:
    if name == "lower_lip":
        return float(np.nanmean(_lower_lip(out_lm)) - np.nanmean(_lower_lip(src_lm)))
    return float(feature(name, (np.nanmean(features(out_lm), 0) - np.nanmean(features(src_lm), 0))[None])[0])


def _corr(a, b) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 and np.std(a[ok]) > 0 else float("nan")


def _faceapi():
    try:
        import faceapi_landmarks
    except Exception:  # noqa: BLE001 - the second landmark model is optional here
        return None
    return faceapi_landmarks, faceapi_landmarks.face_boxes


def _same_person(src, out, step=6) -> float:
    ok = n = 0
    for a, b in list(zip(src, out))[::step]:
        la, lb = detect_landmarks(a), detect_landmarks(b)
        if not la or not lb:
            continue
        n += 1
        ok += float(np.linalg.norm(face_embedding(a, la[0]) - face_embedding(b, lb[0]))) < 0.6
    return ok / max(n, 1)


def measure_clip(name: str, path: Path, work: Path, values=(-1.0, 1.0)) -> list[dict]:
    track = pipeline.disentangle_content(pipeline.load_video(path))
    src_frames = frames(path)
    src_lm = redetect(path)
    src_open = mouth_openings(src_lm)
    fa = _faceapi()
    if fa is not None:
        lmod, find_boxes = fa
        boxes = find_boxes(src_frames)
        fa_src = lmod.mouth_opening(lmod.landmarks(src_frames, boxes))
    rows = []
    for c in CONTROLS:
        for v in values:
            out = work / f"{name}_{c.name}_{v:+.0f}.mp4"
            t0 = time.perf_counter()
            r = pipeline.render_face(track, pipeline.extract_emotion(controls={c.name: v}), out)
            secs = time.perf_counter() - t0
            out_frames = frames(out)
            out_lm = redetect(out)
            feat, sign = MOVES[c.name]
            moved = _moved(feat, src_lm, out_lm)
            row = dict(clip=name, control=c.name, value=v, mouth_dlib=_corr(src_open, mouth_openings(out_lm)),
                       feature=feat, moved=moved, expected=sign * np.sign(v),
                       same=_same_person(src_frames, out_frames), shown=float(r.control_shown[CONTROL_NAMES.index(c.name)]),
                       seconds=secs)
            if fa is not None:
                row["mouth_faceapi"] = _corr(fa_src, lmod.mouth_opening(lmod.landmarks(out_frames, boxes)))
            rows.append(row)
            print(f"{name:8s} {c.name:13s} {v:+.0f}: mouth r dlib {row['mouth_dlib']:.3f}"
                  + (f" face-api {row['mouth_faceapi']:.3f}" if 'mouth_faceapi' in row else "")
                  + f", {feat} {moved:+.3f} IOD, same {row['same']:.0%}, shown {row['shown']:.0%}", flush=True)
            out.unlink()
    return rows


def grid(path: Path, index: int, out: Path, values=(-1.0, 0.5, 1.0), scale: float = 0.5) -> None:
    """Each control (a row) at ``values`` beside the source, on frame ``index``: 1:1 crops of the face."""
    track = pipeline.disentangle_content(pipeline.load_video(path))
    frame = pipeline.frame_at(track, index)
    lm = track.landmarks[index]
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    w, h = x1 - x0, y1 - y0
    x0, x1 = int(max(0, x0 - 0.08 * w)), int(min(frame.shape[1], x1 + 0.08 * w))
    y0, y1 = int(max(0, y0 - 0.3 * h)), int(min(frame.shape[0], y1 + 0.04 * h))
    rows = []
    font = cv2.FONT_HERSHEY_SIMPLEX
    for c in CONTROLS:
        tiles = [frame[y0:y1, x0:x1]]
        for v in values:
            p = pipeline.preview_frame(track, pipeline.extract_emotion(controls={c.name: v}), index, frame=frame)
            tiles.append(p.edited[y0:y1, x0:x1])
        if scale != 1:
            tiles = [cv2.resize(t, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for t in tiles]
        row = np.concatenate([np.pad(t, ((0, 0), (0, 4), (0, 0)), constant_values=255) for t in tiles], 1)
        label = np.full((22, row.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"{c.name}: source | -1 | +0.5 | +1", (4, 16), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([label, row], 0))
    half = (len(rows) + 1) // 2
    cols = [np.concatenate(rows[:half], 0), np.concatenate(rows[half:], 0)]
    hgt = max(c.shape[0] for c in cols)
    cols = [np.pad(c, ((0, hgt - c.shape[0]), (0, 12), (0, 0)), constant_values=255) for c in cols]
    img = np.concatenate(cols, 1)
    cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out} ({img.shape[1]}x{img.shape[0]})")


def table(rows: list[dict]) -> str:
    fa = any("mouth_faceapi" in r for r in rows)
    head = "| clip | control | value | mouth r (dlib) |" + (" mouth r (face-api) |" if fa else "") + \
           " moved (IOD) | as expected | same person | shown |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ok = "yes" if np.sign(r["moved"]) == r["expected"] else "**no**"
        lines.append(f"| {r['clip']} | {r['control']} | {r['value']:+.0f} | {r['mouth_dlib']:.3f} |"
                     + (f" {r.get('mouth_faceapi', float('nan')):.3f} |" if fa else "")
                     + f" {r['feature']} {r['moved']:+.3f} | {ok} | {r['same']:.0%} | {r['shown']:.0%} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="*", default=list(CLIPS), choices=list(CLIPS))
    ap.add_argument("--no-grid", action="store_true", help="skip docs/images/controls_grid.png")
    ap.add_argument("--grid-frame", type=int, default=10, help="the speaker clip's frame the grid shows")
    ap.add_argument("--grid-scale", type=float, default=0.5, help="the grid's tiles, as a share of the face's pixels")
    ap.add_argument("--out", default=str(ROOT / "bench/results/controls.md"))
    args = ap.parse_args()
    if not args.no_grid:
        grid(CLIPS["speaker"], args.grid_frame, ROOT / "docs/images/controls_grid.png", scale=args.grid_scale)
    work = Path(tempfile.mkdtemp(prefix="sserd-controls-"))
    try:
        rows = [r for name in args.clips for r in measure_clip(name, CLIPS[name], work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = ("# Expression controls at their extremes\n\nMade by `python bench/controls.py` "
            "(see its docstring for what each column measures).\n\n" + table(rows) + "\n")
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

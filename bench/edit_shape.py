#!/usr/bin/env python3
"""Does the edit keep the shapes a real face makes? Lips, skin stretch and the 68 points, per emotion.

Every real clip × every target at intensity 1 is rendered with the product's API in memory
(``pipeline.render_face`` with a ``frame_sink``, no encode), and on every ``--step``-th frame:

- **lip height**: dlib's 68 points fitted afresh (the benchmark's own HOG detection on the source
  frame, that box reused on the edit) — each lip's height (upper: 51→62, lower: 66→57, canonical
  units) on the edit ÷ on the source at the same frame (so at the same opening). Reported: the 5th
  percentile of the smaller of the two ratios (goal ≥ 0.80).
- **stretch**: the warp's backward map (``LandmarkEditor.flow``), its Jacobian per pixel: the local
  area ratio (reported as max(a, 1/a)) and anisotropy (largest ÷ smallest stretch), p99 inside the
  lips (the edited outer-lip polygon) and on the skin (the rest of the blend ellipse), and the share
  of pixels where the warp folds over (area ratio ≤ 0; goal 0).
- **shape plausibility**: the re-fitted 68 points in canonical face space minus the clip's own
  neutral (the expression, without the person's shape) are compared with the spread of real
  expressive faces: a PCA model (95 % of the variance) of the same expression deltas on the real
  clips ``smile``, ``sad`` and ``occluded`` (one woman laughing, crying, sad behind her hand; the
  edit's calibration used none of them, it used ``speaker``). The figure is the share of edited frames
  whose Mahalanobis distance (plus residual) lies within the 99th percentile of the model's own
  frames, beside the same share for the unedited source frames (its baseline). Caveat: the model knows only the expressions that footage shows (laughing, crying, sad);
  an expression it never saw (surprise, anger, fear, disgust) can read as "outside" while looking
  right — read this figure together with the crops.
- **same person**: dlib's 128-d distance edit vs source < 0.6, % of frames.

    python bench/edit_shape.py                                   # all real clips + hopper, 7 targets
    python bench/edit_shape.py --clips speaker --emotions happy --step 2 --out bench/results/edit_shape.md
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fear", "disgusted")
CLIPS = {"speaker": ROOT / "assets/real/real_speaker.mp4", "smile": ROOT / "assets/real/real_smile.mp4",
         "sad": ROOT / "assets/real/real_sad.mp4", "occluded": ROOT / "assets/real/real_occluded.mp4",
         "hopper": ROOT / "assets/sample_hopper.mp4", "glasses_metal": ROOT / "assets/real/real_glasses_metal.mp4"}
MODEL_CLIPS = ("smile", "sad", "occluded")


def canonical(lm: np.ndarray) -> np.ndarray:
    """dlib points in canonical face space (the midpoints of each eye's corners at (∓0.5, 0), as
    sserd_core.geometry defines it), computed here, not by the product."""
    lm = np.asarray(lm, np.float64)
    r, l = (lm[36] + lm[39]) / 2, (lm[42] + lm[45]) / 2
    d = l - r
    s = 1.0 / np.hypot(*d)
    c, si = d / np.hypot(*d)
    R = np.array([[c, si], [-si, c]]) * s
    return (lm - (r + l) / 2) @ R.T


def lip_heights(X: np.ndarray) -> tuple[float, float]:
    return float(X[62, 1] - X[51, 1]), float(X[57, 1] - X[66, 1])


class ShapeModel:
    """PCA of expression deltas (canonical 68 points − the clip's neutral), 95 % of the variance."""

    def __init__(self, deltas: np.ndarray):
        D = deltas.reshape(len(deltas), -1)
        self.mean = D.mean(0)
        u, s, vt = np.linalg.svd(D - self.mean, full_matrices=False)
        var = s ** 2 / (len(D) - 1)
        k = int(np.searchsorted(np.cumsum(var) / var.sum(), 0.95)) + 1
        self.basis, self.var = vt[:k], var[:k]
        self.res_var = max(float(var[k:].mean()) if len(var) > k else 1e-8, 1e-8)
        self.limit = float(np.percentile(self.distance(deltas), 99))

    def distance(self, deltas: np.ndarray) -> np.ndarray:
        D = deltas.reshape(len(deltas), -1) - self.mean
        c = D @ self.basis.T
        res = D - c @ self.basis
        return np.sqrt((c ** 2 / self.var).sum(1) + (res ** 2).sum(1) / self.res_var / max(D.shape[1] - len(self.var), 1))


def track(clip: str):
    from sserd_core import pipeline

    return pipeline.disentangle_content(pipeline.load_video(CLIPS[clip]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="speaker,smile,sad,occluded,hopper")
    ap.add_argument("--emotions", default=",".join(EMOTIONS))
    ap.add_argument("--intensity", type=float, default=1.0)
    ap.add_argument("--step", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="write a markdown table here (+ .json beside it)")
    ap.add_argument("--product-root", type=Path, default=None,
                    help="import sserd_core from this tree (an older commit's `git archive`, for before/after; "
                         "a tree without LandmarkEditor.flow reports no stretch)")
    args = ap.parse_args()
    if args.product_root:
        sys.path.insert(0, str(args.product_root.resolve()))

    import cv2
    from bench_edit_strength import Dlib
    from sserd_core import emotion as em, media, pipeline
    from sserd_core.landmark.render import LandmarkEditor

    dl = Dlib()
    # the shape model: expression deltas of the real clips the calibration did not use
    deltas = []
    for clip in MODEL_CLIPS:
        content = track(clip)
        ok = content.found
        deltas.append(content.canonical[ok] - content.neutral[None])
    model = ShapeModel(np.concatenate(deltas).astype(np.float64))
    print(f"shape model: {len(model.var)} components, {sum(len(d) for d in deltas)} real frames; "
          f"99th percentile distance {model.limit:.2f}", flush=True)

    editor = LandmarkEditor()
    work = Path(tempfile.mkdtemp(prefix="sserd_edit_shape_"))  # the renders' video goes here, never to a fixed name
    rows = []
    for clip in args.clips.split(","):
        t0 = time.perf_counter()
        content = track(clip)
        video = content.video
        src = {f.index: f.rgb for f in media.iter_frames(video) if f.index % args.step == 0}
        keep = sorted(src)
        ref, src_dist = {}, []
        for i in keep:
            lm, shape, rect = dl.landmarks(src[i])
            if lm is not None:
                ref[i] = (rect, lip_heights(canonical(lm)), dl.embedding(src[i], shape))
                src_dist.append(float(model.distance((canonical(lm) - content.neutral)[None])[0]))
        for emo in args.emotions.split(","):
            got = {}
            pipeline.render_face(content, pipeline.extract_emotion(emo, args.intensity), work / "render.mp4", frame_sink=lambda i, rgb: got.__setitem__(i, rgb) if i in src else None)
            target = np.zeros(7, np.float32)
            target[em.EMOTIONS.index(emo)] = args.intensity
            lips_r, same, dist = [], [], []
            area_l, area_s, an_l, an_s, fold = [], [], [], [], []
            for i in keep:
                if i in ref:
                    rect, (u0, l0), e0 = ref[i]
                    lm, shape, _ = dl.landmarks(got[i], rect)
                    if lm is not None:
                        X = canonical(lm)
                        u1, l1 = lip_heights(X)
                        if u0 > 0.02 and l0 > 0.02:
                            lips_r.append(min(u1 / u0, l1 / l0))
                        same.append(float(np.linalg.norm(dl.embedding(got[i], shape) - e0)) < 0.6)
                        dist.append(float(model.distance((X - content.neutral)[None])[0]))
                face = content.face_frame(i)
                f = editor.flow(src[i], face, target) if hasattr(editor, "flow") else None
                if f is None:
                    continue
                area, aniso = f.stretch()
                (x0, y0), (ex0, ey0, ex1, ey1) = f.roi, f.box
                cx, cy, rx, ry = f.ellipse
                yy, xx = np.mgrid[ey0:ey1, ex0:ex1]
                inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 0.8 ** 2
                lips = np.zeros(area.shape, np.uint8)
                cv2.fillPoly(lips, [np.round(f.dst_lm[48:60] - [x0 + ex0, y0 + ey0]).astype(np.int32)], 1)
                lips = lips.astype(bool)
                skin = inside & ~lips
                a = np.maximum(area, 1e-6)
                ratio = np.maximum(a, 1.0 / a)
                if lips.any():
                    area_l.append(ratio[lips])
                    an_l.append(aniso[lips])
                area_s.append(ratio[skin])
                an_s.append(aniso[skin])
                fold.append(float((area[inside] <= 0).mean()))
            p99 = lambda parts: float(np.percentile(np.concatenate(parts), 99)) if parts else float("nan")  # noqa: E731
            row = dict(clip=clip, emotion=emo,
                       lip_p5=float(np.percentile(lips_r, 5)) if lips_r else float("nan"),
                       area_lips_p99=p99(area_l), aniso_lips_p99=p99(an_l),
                       area_skin_p99=p99(area_s), aniso_skin_p99=p99(an_s),
                       fold=float(np.mean(fold)) if fold else 0.0,
                       plausible=float(np.mean(np.array(dist) <= model.limit)) if dist else float("nan"),
                       plausible_source=float(np.mean(np.array(src_dist) <= model.limit)) if src_dist else float("nan"),
                       same=100.0 * float(np.mean(same)) if same else float("nan"))
            rows.append(row)
            print(f"{clip:>9} {emo:>9}  lips p5 {row['lip_p5']:.2f}  stretch lips {row['area_lips_p99']:.2f}/"
                  f"{row['aniso_lips_p99']:.2f} skin {row['area_skin_p99']:.2f}/{row['aniso_skin_p99']:.2f}  "
                  f"fold {row['fold']:.4f}  plausible {row['plausible']:.0%} (source {row['plausible_source']:.0%})  same {row['same']:.0f} %", flush=True)
        print(f"  ({clip}: {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)  # the folder this run made, and only that
    if args.out:
        lines = ["| clip | target | lip height p5 (≥ 0.80) | area p99 lips / skin | anisotropy p99 lips / skin "
                 "| fold-over | within real spread (source) | same person |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['clip']} | {r['emotion']} | {r['lip_p5']:.2f} | {r['area_lips_p99']:.2f} / "
                         f"{r['area_skin_p99']:.2f} | {r['aniso_lips_p99']:.2f} / {r['aniso_skin_p99']:.2f} | "
                         f"{r['fold']:.4f} | {r['plausible']:.0%} ({r['plausible_source']:.0%}) | {r['same']:.0f} % |")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

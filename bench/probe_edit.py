#!/usr/bin/env python3
"""A fast, in-memory look at the edit's strength: for trying a change before the full benchmark.

    python bench/probe_edit.py                                  # 4 real clips x 6 emotions + neutral, every 3rd frame
    python bench/probe_edit.py --clips smile --emotions neutral,sad --step 2

Each real clip is tracked once; each target is rendered with the product's API
(``pipeline.render_face`` with a ``frame_sink``: the frames the encoder would get, no encode).
On every ``--step``-th frame:

- **Δp**: fer's mini-Xception (the tests' torch port, ``tests/expression_classifier.py``, the
  benchmark's classifier and preprocessing, faces located on the source) — the target class's
  mean probability on the edit minus on the source; for ``neutral`` the drop of the source's
  dominant non-neutral class;
- **mouth corr**: the benchmark's own dlib fit of the inner-lip gap (source detection box
  reused), edit against source; beside it the source's opening's standard deviation and the mean
  absolute change of the opening (IOD): on a mouth that hardly opens, the correlation reads noise;
- **same person**: dlib's 128-d distance < 0.6, % of frames.

It skips the encode, the background and the flicker, so its figures are close to, not the same
as, ``bench/bench_edit_strength.py``'s; use that one for anything reported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' real-media helpers (tests/ is not a package)

EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fear", "disgusted")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="smile,sad,occluded,speaker")
    ap.add_argument("--emotions", default=",".join(EMOTIONS))
    ap.add_argument("--intensity", type=float, default=1.0)
    ap.add_argument("--step", type=int, default=3)
    args = ap.parse_args()

    import expression_classifier as fer
    from bench_edit_strength import Dlib, corr, mouth_opening

    def centre_gap(lm):
        return float(np.linalg.norm(lm[62] - lm[66]) / np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))

    from sserd_core import media, pipeline

    dl = Dlib()
    rows = []
    for clip in args.clips.split(","):
        t0 = time.perf_counter()
        video = pipeline.load_video(ROOT / "assets" / "real" / f"real_{clip}.mp4")
        content = pipeline.disentangle_content(video)
        keep = [f.index for f in media.iter_frames(video) if f.index % args.step == 0]
        src = {f.index: f.rgb for f in media.iter_frames(video) if f.index % args.step == 0}
        frames_src = [src[i] for i in keep]
        boxes = fer.find_boxes(frames_src)
        p_src = fer.to_project(fer.classify(frames_src, boxes)).mean(0)
        rects, m_src, e_src = [], [], []
        for rgb in frames_src:
            lm, shape, rect = dl.landmarks(rgb)
            rects.append(rect)
            m_src.append((mouth_opening(lm), centre_gap(lm)) if lm is not None else (np.nan, np.nan))
            e_src.append(dl.embedding(rgb, shape) if lm is not None else None)
        dom = int(np.argmax(p_src[1:])) + 1  # the source's dominant non-neutral class
        for emo in args.emotions.split(","):
            got = {}
            with tempfile.TemporaryDirectory(prefix="sserd-probe-") as work:  # the render's file is not looked at
                pipeline.render_face(content, pipeline.extract_emotion(emo, args.intensity), Path(work) / "probe.mp4",
                                     frame_sink=lambda i, rgb: got.__setitem__(i, rgb) if i in src else None)
            out = [got[i] for i in keep]
            p_out = fer.to_project(fer.classify(out, boxes)).mean(0)
            k = dom if emo == "neutral" else fer.PROJECT_LABELS.index(emo)
            dp = (p_src[k] - p_out[k]) if emo == "neutral" else (p_out[k] - p_src[k])
            m_out, same = [], []
            for rgb, rect, es in zip(out, rects, e_src):
                lm, shape, _ = dl.landmarks(rgb, rect) if rect is not None else (None, None, None)
                m_out.append((mouth_opening(lm), centre_gap(lm)) if lm is not None else (np.nan, np.nan))
                if lm is not None and es is not None:
                    same.append(float(np.linalg.norm(dl.embedding(rgb, shape) - es)) < 0.6)
            a, b = np.array(m_src)[:, 0], np.array(m_out)[:, 0]
            c, _ = corr(a, b)
            both = np.isfinite(a) & np.isfinite(b)
            spread, moved = float(np.std(a[both])), float(np.mean(np.abs(b[both] - a[both])))
            cc, _ = corr(np.array(m_src)[:, 1], np.array(m_out)[:, 1])
            rows.append((clip, emo, fer.PROJECT_LABELS[k], p_src[k], p_out[k], dp, c, 100.0 * np.mean(same)))
            print(f"{clip:>9} {emo:>9} [{fer.PROJECT_LABELS[k]:>9}] p {p_src[k]:.2f} -> {p_out[k]:.2f}  "
                  f"Δ {dp:+.2f}  mouth corr {c:.2f} (centre gap {cc:.2f}; opening sd {spread:.3f}, mean |change| {moved:.3f} IOD)  "
                  f"same {rows[-1][-1]:.0f} %", flush=True)
        print(f"  ({clip}: {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    gains = [r[5] for r in rows if r[1] != "neutral"]
    if gains:
        per = {e: np.mean([r[5] for r in rows if r[1] == e]) for e in EMOTIONS[1:] if any(r[1] == e for r in rows)}
        print("mean Δp over emotions %+.3f; " % np.mean(gains) + ", ".join(f"{e} {v:+.2f}" for e, v in per.items())
              + "; same person min %.0f %%" % min(r[7] for r in rows))


if __name__ == "__main__":
    main()

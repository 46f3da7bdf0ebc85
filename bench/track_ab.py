"""The tracking pass, this tree against another copy of it, alternated in one process (issue 13).

    python bench/track_ab.py --old /tmp/old_tree                       # close-ups (400 and 200 px) + assets/real
    python bench/track_ab.py --old /tmp/old_tree --clips real_smile --rounds 5
    python bench/track_ab.py --old /tmp/old_tree --edit sad happy       # and the edited output

Each clip is decoded once into memory, then ``face.track_faces`` of each tree runs on the same
frames in turn (old, new, old, new, ...): wall and process-CPU milliseconds a frame (decode not
included), best and median over the rounds, and the landmarks' difference new vs old: per point
distance in pixels, mean and max over the frames both found, also relative to the face's size
(the landmarks' bounding-box diagonal / sqrt 2, the tracker's own unit), and the frames where one
found the face and the other did not. The old tree's ``sserd_core`` is imported under another
name, as in bench/edit_one_check.py.

``--edit``: also ``pipeline.edit_video`` of each tree once per emotion (tracking included), both
outputs decoded: |new - old| in grey levels (mean of the channels) inside the face (the convex
hull of the old tree's landmarks, dilated by 5 % of the face size), mean over the frames and worst
frame, and outside it (the encoder spreads any change over the whole frame); issue 13's bar: <= 1
grey level mean in the face.
"""

from __future__ import annotations

import argparse
import importlib
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from edit_one_check import load_old  # noqa: E402


def clip(name: str, seconds: float) -> Path:
    """``closeup`` (720p, 400 px face), ``closeup200`` (720p, 200 px), a name in assets/real, or a path."""
    if Path(name).exists():
        return Path(name)
    px = {"closeup": 400, "closeup200": 200}.get(name)
    if px is None:
        return ROOT / "assets" / "real" / f"{name}.mp4"
    p = Path(f"/tmp/sserd_closeup_720_{px}_{seconds:g}s.mp4")
    if not p.exists():
        from bench_speed import make_clip

        make_clip(p, (1280, 720), px, seconds)
    return p


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--clips", nargs="+",
                    default=["closeup", "closeup200", "real_smile", "real_speaker", "real_occluded", "real_sad"])
    ap.add_argument("--seconds", type=float, default=4.0, help="length of a generated close-up")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--edit", nargs="*", default=[], metavar="EMOTION")
    args = ap.parse_args()
    from sserd_core import face as new_face
    from sserd_core import media

    load_old(args.old)
    old_face = importlib.import_module("sserd_old_pkg.face")
    first = True
    for name in args.clips:
        info = media.probe_video(clip(name, args.seconds))
        frames = [f.rgb for f in media.iter_frames(info)]
        n = len(frames)
        if first:  # load the models and make the detectors outside the timings
            for mod in (old_face, new_face):
                mod.track_faces(iter(frames[:2]), info.fps_float, 2)
            first = False
        res: dict = {"old": [], "new": []}
        tracks = {}
        for _ in range(args.rounds):
            for key, mod in (("old", old_face), ("new", new_face)):
                time.sleep(0.5)
                r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                tracks[key] = mod.track_faces(iter(frames), info.fps_float, n)
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                wall = time.perf_counter() - t0
                cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
                res[key].append((1000 * wall / n, 1000 * cpu / n))
        a, b = tracks["old"], tracks["new"]
        both = a.found & b.found
        d = np.linalg.norm(b.landmarks[both] - a.landmarks[both], axis=-1)  # [frames, 68]
        lm = a.landmarks[both]
        size = np.linalg.norm(lm.max(1) - lm.min(1), axis=-1) / np.sqrt(2)
        rel = d / size[:, None]
        print(f"{name} ({info.width}x{info.height}, {n} frames, face ~{np.median(size):.0f} px):")
        for key in ("old", "new"):
            w, c = [x[0] for x in res[key]], [x[1] for x in res[key]]
            print(f"  {key}: ms/frame wall best {min(w):.1f} median {statistics.median(w):.1f}; "
                  f"CPU best {min(c):.1f} median {statistics.median(c):.1f}")
        rw = [nw[0] / o[0] for o, nw in zip(res["old"], res["new"])]
        rc = [nw[1] / o[1] for o, nw in zip(res["old"], res["new"])]
        print(f"  new/old median: wall {statistics.median(rw):.2f}, CPU {statistics.median(rc):.2f}")
        if both.any():
            print(f"  landmarks new-old: mean {d.mean():.3f} px, max {d.max():.2f} px; "
                  f"relative to face size: mean {100 * rel.mean():.3f} %, max {100 * rel.max():.2f} %; "
                  f"worst frame mean {d.mean(1).max():.3f} px")
        print(f"  found: old {int(a.found.sum())}, new {int(b.found.sum())}, differ in "
              f"{int((a.found != b.found).sum())} frames", flush=True)
        for emotion in args.edit:
            compare_edits(info, frames, a, emotion)


def compare_edits(info, frames, track, emotion: str) -> None:
    import tempfile

    import cv2

    from sserd_core import media

    old_pipeline = importlib.import_module("sserd_old_pkg.pipeline")
    from sserd_core import pipeline as new_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for key, pl in (("old", old_pipeline), ("new", new_pipeline)):
            path = Path(tmp) / f"{key}.mp4"
            pl.edit_video(info.path, path, emotion)
            outs[key] = [f.rgb.astype(np.int16) for f in media.iter_frames(media.probe_video(path))]
    inside, worst, outside = [], 0.0, []
    for i, (o, nw) in enumerate(zip(outs["old"], outs["new"])):
        grey = np.abs(nw - o).mean(2)
        mask = np.zeros(grey.shape, np.uint8)
        if track.found[i]:
            lm = track.landmarks[i]
            cv2.fillConvexPoly(mask, cv2.convexHull(lm).astype(np.int32), 1)
            r = max(1, int(0.05 * np.linalg.norm(lm.max(0) - lm.min(0)) / np.sqrt(2)))
            mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            inside.append(float(grey[mask > 0].mean()))
            worst = max(worst, inside[-1])
        outside.append(float(grey[mask == 0].mean()))
    print(f"  edit {emotion}: |new - old| in the face mean {np.mean(inside):.3f}, worst frame {worst:.3f} grey "
          f"levels; outside it mean {np.mean(outside):.3f} (the encoder's answer to the change) "
          f"({len(outs['old'])} / {len(outs['new'])} frames)", flush=True)


if __name__ == "__main__":
    main()

"""Per-call timing and output check of ``LandmarkEditor.edit_one``: this tree against another copy of it.

    python bench/edit_one_check.py --old /tmp/old_tree            # old tree: a folder holding sserd_core/
    python bench/edit_one_check.py --old /tmp/old_tree --clips closeup real_smile --every 5 --repeat 7

The old tree's ``sserd_core`` is imported under another name (``git archive <commit> sserd_core``
into a folder; the package's imports are relative). Both editors get the same decoded frames and
the same track (from this tree). Per frame: the minimum of ``--repeat`` calls of each editor,
interleaved (old, new, old, new, ...) in one process with ``cv2.setNumThreads(1)`` and BLAS on one thread (as in a render), so load on a
shared machine hits both alike. Output: |new − old| in grey levels (mean over the three channels)
inside the face (the landmarks' convex hull) — mean and max over the frames — and outside the
pixels the old editor left as they were (the largest |new − old| there: 0 unless the new one
touches pixels the old did not).

Clips: ``closeup`` (the real speaker at 720p with a ~400 px face, as bench_speed makes it; cached
in /tmp) and the files of assets/real/.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_old(tree: Path):
    tmp = Path("/tmp") / ("sserd_oldcopy_" + __import__("hashlib").md5(str(tree.resolve()).encode()).hexdigest()[:8])
    pkg = tmp / "sserd_old_pkg"
    if not pkg.exists():
        import shutil

        tmp.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tree / "sserd_core", pkg)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("sserd_old_pkg.landmark.render")


def clip_path(name: str, seconds: float) -> Path:
    if name == "closeup":
        p = Path(f"/tmp/sserd_closeup_720_400_{seconds:g}s.mp4")
        if not p.exists():
            sys.path.insert(0, str(ROOT / "bench"))
            from bench_speed import make_clip

            make_clip(p, (1280, 720), 400, seconds)
        return p
    if name == "closeup1080":
        p = Path(f"/tmp/sserd_closeup_1080_600_{seconds:g}s.mp4")
        if not p.exists():
            sys.path.insert(0, str(ROOT / "bench"))
            from bench_speed import make_clip

            make_clip(p, (1920, 1080), 600, seconds)
        return p
    return ROOT / "assets" / "real" / f"{name}.mp4"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--clips", nargs="+", default=["closeup", "real_smile", "real_speaker", "real_occluded", "real_sad"])
    ap.add_argument("--emotions", nargs="+", default=["sad", "happy"])
    ap.add_argument("--every", type=int, default=9)
    ap.add_argument("--max-frames", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of the generated close-up")
    ap.add_argument("--no-time", action="store_true")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # as in pipeline.render_face

    from sserd_core import media, pipeline
    from sserd_core.emotion import EmotionSpec
    from sserd_core.landmark import render as new_render

    old_render = load_old(args.old)
    print(f"new: {new_render.__file__}\nold: {old_render.__file__}")
    new_ed, old_ed = new_render.LandmarkEditor(), old_render.LandmarkEditor()
    rows = []
    for clip in args.clips:
        path = clip_path(clip, args.seconds)
        info = pipeline.load_video(path, max_frames=args.max_frames)
        track = pipeline.disentangle_content(info)
        frames = [f.rgb for f in media.iter_frames(info, max_frames=args.max_frames)]
        for emo in args.emotions:
            spec = EmotionSpec.from_label(emo, 0.9)
            targets = spec.targets(track.times[: len(frames)])
            t_old, t_new, c_old, c_new, d_in, d_in_max, d_out, items = [], [], [], [], [], [], 0, []
            n_diff = 0
            for i in range(0, len(frames), args.every):
                face = track.face_frame(i)
                if face is None:
                    continue
                fr = frames[i]
                a = old_ed.edit_one(fr, face, targets[i])
                b = new_ed.edit_one(fr, face, targets[i])
                hull = cv2.convexHull(face.landmarks.astype(np.float32)).astype(np.int32)
                m = np.zeros(fr.shape[:2], np.uint8)
                cv2.fillConvexPoly(m, hull, 1)
                diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(2)
                d_in.append(float(diff[m > 0].mean()))
                d_in_max.append(float(diff[m > 0].max()))
                # where the old editor left the source as it was, how far the new one moved from it
                # (0 unless the new one touches pixels the old did not, e.g. at the mask's edge)
                untouched = ~np.any(a != fr, 2)
                d_out = max(d_out, int(np.abs(a.astype(np.int16) - b.astype(np.int16))[untouched].max(initial=0)))
                n_diff += int(np.any(a != b, 2).sum())
                items.append((fr, face, targets[i]))
            if not args.no_time:
                # blocks of all sampled frames, old and new alternated, a pause before each: the CPU
                # time of a block includes BLAS threads spinning between its calls (as in a render)
                # but not the tail of the other editor's block
                for _ in range(args.repeat):
                    for ed, tt, cc in ((old_ed, t_old, c_old), (new_ed, t_new, c_new)):
                        time.sleep(0.3)
                        t, c = time.perf_counter(), time.process_time()
                        for it in items:
                            ed.edit_one(*it)
                        cc.append((time.process_time() - c) / len(items))
                        tt.append((time.perf_counter() - t) / len(items))
            r = dict(clip=clip, emotion=emo, size=f"{frames[0].shape[1]}x{frames[0].shape[0]}", n=len(d_in),
                     mean_in=np.mean(d_in), max_mean_in=np.max(d_in), max_px=np.max(d_in_max), out=d_out, n_diff=n_diff,
                     old_ms=1e3 * np.min(t_old) if t_old else float("nan"),
                     new_ms=1e3 * np.min(t_new) if t_new else float("nan"),
                     old_cpu=1e3 * np.min(c_old) if c_old else float("nan"),
                     new_cpu=1e3 * np.min(c_new) if c_new else float("nan"))
            rows.append(r)
            print(f"{clip:14s} {emo:6s} {r['size']:>9s} n={r['n']:3d}  |d| in face: mean {r['mean_in']:.3f} "
                  f"(worst frame {r['max_mean_in']:.3f}, max px {r['max_px']:.1f})  outside: {r['out']}  "
                  f"pixels differing: {r['n_diff']}  "
                  f"edit_one ms/frame (best block): wall old {r['old_ms']:.1f} new {r['new_ms']:.1f}, "
                  f"process CPU old {r['old_cpu']:.1f} new {r['new_cpu']:.1f}", flush=True)


if __name__ == "__main__":
    main()

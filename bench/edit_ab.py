"""Whole edits, this tree against another copy of it, alternated in one process (issue 13).

    python bench/edit_ab.py --old /tmp/old_tree                 # the 720p/400 px close-up, 4 s, 3 rounds
    python bench/edit_ab.py --old /tmp/old_tree --clip x.mp4 --rounds 5

``pipeline.edit_video(..., 'sad')`` of each tree in turn (old, new, old, new, ...), each round
after a pause; wall seconds and the process's CPU seconds (all threads: decode, workers, encoder,
and any library thread pool spinning on the side), best and median over the rounds, and the
median ratio new/old. The old tree's ``sserd_core`` is imported under another name, as in
bench/edit_one_check.py. On a shared machine this is what to trust, not two separate runs.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from edit_one_check import clip_path, load_old  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--clip", default="closeup", help="closeup, closeup1080, a name in assets/real, or a path")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of a generated close-up")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    import importlib

    from sserd_core import pipeline as new_pipeline

    load_old(args.old)
    old_pipeline = importlib.import_module("sserd_old_pkg.pipeline")
    src = Path(args.clip) if Path(args.clip).exists() else clip_path(args.clip, args.seconds)
    res: dict = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, pl in (("old", old_pipeline), ("new", new_pipeline)):
                time.sleep(1.0)
                r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                pl.edit_video(src, Path(tmp) / f"{name}{r}.mp4", "sad", threads=args.threads)
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                wall = time.perf_counter() - t0
                cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
                res[name].append((wall, cpu))
                print(f"round {r} {name}: wall {wall:.2f} s, CPU {cpu:.2f} s", flush=True)
    for k in ("old", "new"):
        w = [x[0] for x in res[k]]
        c = [x[1] for x in res[k]]
        print(f"{k}: wall best {min(w):.2f} median {statistics.median(w):.2f} s; "
              f"CPU best {min(c):.2f} median {statistics.median(c):.2f} s")
    ratios_w = [n[0] / o[0] for o, n in zip(res["old"], res["new"])]
    ratios_c = [n[1] / o[1] for o, n in zip(res["old"], res["new"])]
    print(f"new/old per round: wall {', '.join(f'{x:.2f}' for x in ratios_w)} (median "
          f"{statistics.median(ratios_w):.2f}); CPU {', '.join(f'{x:.2f}' for x in ratios_c)} (median "
          f"{statistics.median(ratios_c):.2f})")


if __name__ == "__main__":
    main()

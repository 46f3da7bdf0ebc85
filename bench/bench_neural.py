"""Speed and memory of the neural SSERD backend (CPU or CUDA).

    python bench/bench_neural.py --model MODEL_DIR_OR_REPO_ID [--device cuda] [--dtype fp16]
    python bench/bench_neural.py --random official   # official architecture, random weights
    python bench/bench_neural.py --random tiny       # the small test configuration

Frames come from a video (default assets/sample.mp4); faces are tracked once with the
project's landmark tracker (not timed). Timed: the backend's ``edit`` (align → encode →
emotion edit → decode → paste back) over ``--frames`` frames in batches of
``--batch-size``, after one warm-up batch. Prints frames/s, ms/frame and peak memory
(CUDA: ``torch.cuda.max_memory_allocated``; CPU: the process's peak RSS).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

from sserd_core import neural  # noqa: E402
from sserd_core.editor import FaceFrame  # noqa: E402
from sserd_core.emotion import EmotionSpec, emotion_vector  # noqa: E402
from sserd_core.face import detect_landmarks  # noqa: E402
from sserd_core.models import SSERDNet  # noqa: E402

TINY = dict(size=256, style_dim=32, channel_base=512, channel_max=32, encoder_widths=(16, 24, 32, 48),
            dim_feedforward=32, heads=8, dim_head=4, input_size=64)


def read_frames(path: Path, n: int):
    import av

    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) >= n:
                break
    return frames


def track(frames):
    faces = []
    for rgb in frames:
        found = detect_landmarks(rgb)
        lm = found[0] if found else None
        faces.append(None if lm is None else FaceFrame(lm.astype(np.float32), np.zeros((2, 3), np.float32),
                                                        np.zeros((68, 2), np.float32), emotion_vector("neutral")))
    return faces


def build_editor(args) -> neural.NeuralEditor:
    if args.model:
        return neural.load_editor(args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                                  max_face_size=args.max_face_size)
    torch.manual_seed(0)
    if args.random == "official":
        net = SSERDNet()  # official architecture, the constructors' random initialisation
    else:
        net = SSERDNet(**TINY)
    protos = {e: torch.randn(net.n_styles, net.config.style_dim) for e in ("neutral", "happy")}
    return neural.NeuralEditor(net, protos, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                               max_face_size=args.max_face_size)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="converted model folder or Hugging Face repo id")
    p.add_argument("--random", choices=["official", "tiny"], default=None,
                   help="benchmark a randomly initialised network instead of --model")
    p.add_argument("--video", default=str(ROOT / "assets" / "sample.mp4"))
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--max-face-size", type=int, default=None,
                   help="decode the face only up to this many px (default: the model's full output size)")
    p.add_argument("--dtype", default=None, help="fp32 | fp16 | bf16 (default: bf16/fp16 on CUDA, fp32 on CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the encoder and the decoder")
    p.add_argument("--json", action="store_true", help="also print one JSON line with the figures")
    args = p.parse_args(argv)
    if not args.model and not args.random:
        args.random = "tiny"
    frames = read_frames(Path(args.video), args.frames)
    faces = track(frames)
    editor = build_editor(args)
    dev = editor.device
    if args.compile:
        editor.net.encoder = torch.compile(editor.net.encoder)
        editor.net.decoder = torch.compile(editor.net.decoder)
    editor.prepare(EmotionSpec.from_label("happy", 0.8))
    targets = [emotion_vector("happy", 0.8)] * len(frames)
    bs = editor.batch_size
    face_px = editor.edit_crops([np.zeros((editor.input_size, editor.input_size, 3), np.uint8)], targets[:1]).shape[1]
    editor.edit(frames[:bs], faces[:bs], targets[:bs])  # warm-up (kernel selection, allocator)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(0, len(frames), bs):
        editor.edit(frames[i:i + bs], faces[i:i + bs], targets[i:i + bs])
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    n = len(frames)
    name = args.model or f"random-{args.random}"
    print(f"model={name} device={dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}) "
          f"dtype={str(editor.dtype).replace('torch.', '')} batch={bs} crop={editor.input_size}px "
          f"face_out={face_px}px frame={frames[0].shape[1]}x{frames[0].shape[0]}")
    print(f"frames={n} time={dt:.2f}s fps={n / dt:.2f} ms/frame={1000 * dt / n:.1f}")
    if dev.type == "cuda":
        print(f"peak_gpu_mem={torch.cuda.max_memory_allocated(dev) / 2 ** 20:.0f} MiB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak_rss={rss:.0f} MiB")
    if args.json:
        import json

        print(json.dumps({"model": name, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                          "dtype": str(editor.dtype).replace("torch.", ""), "batch": bs, "face_px": int(face_px),
                          "compile": bool(args.compile), "frames": n, "fps": round(n / dt, 3),
                          "peak_gpu_mib": round(torch.cuda.max_memory_allocated(dev) / 2 ** 20) if dev.type == "cuda"
                          else None, "peak_rss_mib": round(rss)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

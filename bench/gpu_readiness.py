"""GPU readiness in one command: inference speed/memory over a grid, and a short two-stage training run.

    python bench/gpu_readiness.py --out results/gpu                     # on a CUDA machine (a few minutes)
    python bench/gpu_readiness.py --model models/sserd-mead --out results/gpu   # a converted checkpoint
    python bench/gpu_readiness.py --tiny --device cpu --out /tmp/ready  # the test configuration, on a CPU

Inference (``bench/bench_neural.py``, one process per point, so every peak is that point's own): the official
architecture with random weights (or ``--model``), fp32 and bf16, batch 1 / 8 / 32, the face decoded at 256² and
1024² (``max_face_size``), with and without ``torch.compile`` (CUDA only unless ``--compile`` is given) → frames/s
(align → encode → edit → decode → paste back, on the sample clip's 256 px frames) and peak memory. A point that fails
(out of memory, a compile error) is recorded with its error, and the rest go on.

Training (``bench/bench_train.py``): stage 1, then stage 2 from it, ``--train-steps`` timed steps each at 256 px
crops (bf16 mixed precision on CUDA), batch ``--train-batch`` → s/step and peak memory.

Writes ``OUT/results.md`` (the tables) and ``OUT/results.json`` (every point). Targets: ≥ 60 frames/s at 256² on
an H100-class GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list, timeout: float) -> tuple[dict | None, str]:
    try:
        p = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        err = (p.stderr.strip().splitlines() or ["failed"])[-1]
        return None, err[:200]
    return json.loads(lines[-1]), ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for results.md / results.json")
    ap.add_argument("--model", help="a converted model folder or Hub id (default: the official architecture, random)")
    ap.add_argument("--tiny", action="store_true", help="the tests' tiny model (64 px crops, 256 px faces)")
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--sizes", default=None, help="decoded face sizes (default 256,1024; --tiny: 64,256)")
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                    help="auto: with and without torch.compile on CUDA, without on CPU")
    ap.add_argument("--train-steps", type=int, default=10, help="timed steps per training stage (0 = no training)")
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per point")
    args = ap.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = "cuda" if cuda else "cpu"
    sizes = [int(s) for s in (args.sizes or ("64,256" if args.tiny else "256,1024")).split(",")]
    compiles = {"auto": [False, True] if cuda else [False], "on": [False, True], "off": [False]}[args.compile]
    src = ["--model", args.model] if args.model else ["--random", "tiny" if args.tiny else "official"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name() if cuda else "cpu"
    points = []
    for dtype in args.dtypes.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            for size in sizes:
                for comp in compiles:
                    cmd = ["bench/bench_neural.py", *src, "--device", device, "--dtype", dtype, "--batch-size",
                           str(batch), "--max-face-size", str(size), "--frames", str(max(8, 3 * batch)), "--json"]
                    t0 = time.perf_counter()
                    res, err = _run(cmd + (["--compile"] if comp else []), args.timeout)
                    row = {**(res or {}), **dict(dtype=dtype, batch=batch, face_px=size, compile=comp,
                                                 error=err or None, wall_s=round(time.perf_counter() - t0, 1))}
                    points.append(row)
                    print(json.dumps(row), file=sys.stderr)
    training = []
    if args.train_steps > 0:
        for stage in (1, 2):
            cmd = ["bench/bench_train.py", "--stage", str(stage), "--batch-size", str(args.train_batch), "--steps",
                   str(args.train_steps), "--frames", str(max(4, args.train_batch)), "--device", device,
                   "--mixed-precision", "bf16" if cuda else "no"] + (["--tiny"] if args.tiny else [])
            res, err = _run(cmd, args.timeout)
            training.append({**(res or {}), **dict(stage=stage, batch=args.train_batch, error=err or None)})
            print(json.dumps(training[-1]), file=sys.stderr)
    model = args.model or ("tiny (random)" if args.tiny else "official architecture (random weights)")
    md = [f"# GPU readiness: {model} on {gpu}", "",
          "## Inference (align → encode → edit → decode → paste back)", "",
          "| dtype | batch | face px | torch.compile | frames/s | peak GPU MiB | peak RSS MiB | note |",
          "|---|---:|---:|---|---:|---:|---:|---|"]
    for r in points:
        md.append(f"| {r['dtype']} | {r['batch']} | {r['face_px']} | {'on' if r['compile'] else 'off'} | "
                  f"{r.get('fps', '—') if not r['error'] else '—'} | {r.get('peak_gpu_mib') or '—'} | "
                  f"{r.get('peak_rss_mib', '—')} | {r['error'] or ''} |")
    if training:
        md += ["", f"## Training ({'64 px crops, the tiny model' if args.tiny else '256 px crops'}, random weights)", "",
               "| stage | batch | s/step | steps/s | peak GPU GiB | peak RSS GiB | note |", "|---:|---:|---:|---:|---:|---:|---|"]
        for r in training:
            md.append(f"| {r['stage']} | {r['batch']} | {r.get('sec_per_step', '—')} | {r.get('steps_per_sec', '—')} | "
                      f"{r.get('peak_gpu_mem_gib', '—')} | {r.get('peak_rss_gib', '—')} | {r['error'] or ''} |")
    (out / "results.md").write_text("\n".join(md) + "\n")
    (out / "results.json").write_text(json.dumps({"device": gpu, "model": model, "inference": points,
                                                  "training": training}, indent=1))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

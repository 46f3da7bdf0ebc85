"""Time SSERD training steps: seconds per step and peak memory, at the paper's resolution and batch size.

    python bench/bench_train.py                        # official architecture, 256 px crops, batch 2, stage 1
    python bench/bench_train.py --stage 2 --batch-size 2 --steps 20
    python bench/bench_train.py --identity-net arcface.pt --perceptual-net lpips.pt   # with the real loss nets
    python bench/bench_train.py --tiny --device cpu    # the tests' tiny model (what docs/TRAINING.md quotes for CPU)

Random weights (speed does not depend on their values) and a synthetic cache of cartoon faces made here;
without --identity-net / --perceptual-net those terms are off (weight 0), so the step is cheaper than the
paper's by the cost of an IR-SE-50 and a VGG forward/backward. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (after 2 warm-up steps)")
    ap.add_argument("--tiny", action="store_true", help="the tests' tiny model with 64 px crops")
    ap.add_argument("--mixed-precision", default="bf16")
    ap.add_argument("--identity-net", default=None)
    ap.add_argument("--perceptual-net", default=None)
    ap.add_argument("--device", default=None, help="cpu to force the CPU")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--frames", type=int, default=4, help="frames per synthetic clip")
    args = ap.parse_args()
    if args.device == "cpu":
        import os

        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    from train_helpers import make_synthetic_cache

    from sserd_core.train.trainer import Trainer, TrainConfig

    size = 64 if args.tiny else 256
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = make_synthetic_cache(tmp / "cache", actors=("A1", "A2"), frames=args.frames, size=size)
        model = ({"config": dict(size=256, style_dim=32, channel_base=512, channel_max=32,
                                 encoder_widths=[16, 24, 32, 48], dim_feedforward=32, heads=8, dim_head=4,
                                 input_size=64)} if args.tiny else {"config": {"input_size": 256}})
        def config(stage: int, out: Path, max_steps: int, pretrained=None) -> "TrainConfig":
            m = {"pretrained": str(pretrained)} if pretrained is not None else model
            return TrainConfig.from_dict({
                "data": {"cache": str(cache)}, "model": m,
                "train": {"stage": stage, "output_dir": str(out), "max_steps": max_steps,
                          "batch_size": args.batch_size, "mixed_precision": args.mixed_precision,
                          "checkpoint_every": 0, "sample_every": 0, "val_every": 0, "log_every": 1,
                          "num_threads": args.threads},
                "loss": {"identity_net": args.identity_net, "perceptual_net": args.perceptual_net,
                         "id": 0.2 if args.identity_net else 0.0, "perceptual": 0.8 if args.perceptual_net else 0.0},
            })

        if args.stage == 2:
            # stage 2 starts from a stage-1 model (the trainable parameters and the frozen encoder are chosen when
            # the Trainer is built, so a separate stage-2 Trainer is needed, as in real use)
            first = Trainer(config(1, tmp / "run1", 1), log=lambda m: None)
            first.train(1)
            trainer = Trainer(config(2, tmp / "run", args.steps + 2, pretrained=first.out / "model"), log=lambda m: None)
        else:
            trainer = Trainer(config(1, tmp / "run", args.steps + 2), log=lambda m: None)
        dev = trainer.acc.device
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = trainer.state.step
        trainer.train(start + 2)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        trainer.train(start + 2 + args.steps)
        import csv

        with open(tmp / "run" / "train_log.csv") as f:  # per-step wall time logged by the trainer (no saving)
            rows = [r for r in csv.DictReader(f) if int(r["step"]) > start + 2]
        dt = sum(float(r["sec_per_step"]) for r in rows) / len(rows)
        out = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
               "model": "tiny" if args.tiny else "official architecture", "crop_px": size, "stage": args.stage,
               "batch_size": args.batch_size, "mixed_precision": args.mixed_precision if dev.type == "cuda" else "no",
               "identity_net": bool(args.identity_net), "perceptual_net": bool(args.perceptual_net),
               "sec_per_step": round(dt, 4), "steps_per_sec": round(1 / dt, 3)}
        if dev.type == "cuda":
            out["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
        out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
        print(json.dumps(out))


if __name__ == "__main__":
    main()

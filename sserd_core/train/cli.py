"""``sserd preprocess``, ``sserd pairs`` and ``sserd train`` (wired into ``sserd`` via :func:`register`).

Under ``accelerate launch`` (several GPUs / nodes, or several CPU processes) run the command line
as a module: ``accelerate launch -m sserd_core.cli train --config FILE``.
"""

from __future__ import annotations

import argparse
import os


_PRE_EXAMPLES = """\
examples:
  sserd preprocess data/MEAD cache/mead --layout mead --workers 8
  sserd preprocess data/RAVDESS cache/ravdess --layout ravdess --stride 2
  sserd preprocess my_actors cache/mine --layout plain      # my_actors/<actor>/<emotion>/<clip>.mp4
"""


def register(subparsers) -> None:
    """Add ``preprocess``, ``pairs`` and ``train`` to an argparse ``subparsers`` object (each sets ``func``)."""
    p = subparsers.add_parser("preprocess", help="detect, align and crop the faces of a training dataset into a cache",
                              description="Find the face in every frame (dlib 68 landmarks, tracked), cut the "
                                          "aligned crop SSERD sees, its face mask and landmarks, and store them per "
                                          "clip in CACHE. Resumable: rerun to continue; parallel over clips.",
                              epilog=_PRE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="dataset folder (MEAD, RAVDESS or actor/emotion/clip.mp4)")
    p.add_argument("cache", help="output cache folder (created; reused when rerun)")
    p.add_argument("--layout", required=True, choices=["mead", "ravdess", "plain"], help="folder layout of ROOT")
    p.add_argument("--size", type=int, default=256, help="aligned crop side in px, = the model's input_size (256)")
    p.add_argument("--alignment", default="sserd-template", choices=["sserd-template", "ffhq"],
                   help="crop alignment (sserd-template = the official one)")
    p.add_argument("--stride", type=int, default=1, help="keep every N-th frame (default 1 = all)")
    p.add_argument("--max-frames", type=int, default=None, help="at most this many kept frames per clip")
    p.add_argument("--views", default="front", help="MEAD camera views to use, comma-separated (default front)")
    p.add_argument("--detector", default="dlib", choices=["dlib", "mtcnn"],
                   help="face detection: dlib (default, the project's tracker) or mtcnn (the official detect.py: "
                        "MTCNN boxes median-smoothed over 49 frames, margin 70; needs pip install --no-deps "
                        "facenet-pytorch for its bundled weights)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="clips processed in parallel (default: half the CPU cores)")
    p.add_argument("--overwrite", action="store_true", help="redo every clip (and allow changed settings)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_preprocess)

    q = subparsers.add_parser("pairs", help="build SSERD's pseudo-paired data from a (stage-1) model",
                              description="Fit per-actor linear-SVM emotion directions on the model's codes of "
                                          "the cached frames (official: SVC(kernel='linear', C=1) on the raw codes) "
                                          "and render each neutral frame under every emotion.")
    q.add_argument("--config", required=True, help="a stage-2 training config (uses data.cache, model, pairs.*)")
    q.add_argument("--out", default=None, help="output folder (default: pairs.dir or OUTPUT/pairs)")
    q.set_defaults(func=_cmd_pairs)

    t = subparsers.add_parser("train", help="train SSERD (stage 1 or 2) from a config file; works under accelerate",
                              description="Train SSERD from a TOML config (configs/*.toml). Resumes from the newest "
                                          "checkpoint in train.output_dir. For several GPUs/nodes: accelerate launch "
                                          "-m sserd_core.cli train --config FILE.")
    t.add_argument("--config", required=True, help="TOML (or YAML with PyYAML) config file")
    t.add_argument("--max-steps", type=int, default=None, help="override train.max_steps")
    t.add_argument("--output-dir", default=None, help="override train.output_dir")
    t.set_defaults(func=_cmd_train)


def _cmd_preprocess(args) -> int:
    from .preprocess import preprocess

    index = preprocess(args.root, args.cache, args.layout, size=args.size, alignment=args.alignment,
                       stride=args.stride, max_frames=args.max_frames, workers=args.workers, overwrite=args.overwrite,
                       views=tuple(v for v in args.views.split(",") if v), show_bar=not args.quiet,
                       detector=args.detector)
    clips = index["clips"]
    ok = sum(1 for c in clips if c["frames"] > 0)
    frames = sum(c["frames"] for c in clips)
    actors = sorted({c["actor"] for c in clips})
    print(f"{args.cache}: {ok}/{len(clips)} clips with a face, {frames} frames, {len(actors)} actors")
    for c in clips:
        if c["status"] != "ok":
            print(f"  {c['key']}: {c['status']}")
    for reason, n in sorted(index.get("skipped", {}).items()):
        print(f"  skipped {n} file(s): {reason}")
    return 0 if ok else 1


def _cmd_pairs(args) -> int:
    from .data import FrameCache, read_index, split_actors
    from .paired import build_pairs
    from .trainer import TrainConfig, build_model

    cfg = TrainConfig.load(args.config)
    index = read_index(cfg.data["cache"])
    actors = sorted({c["actor"] for c in index["clips"] if c["frames"] > 0})
    if cfg.data["actors"]:
        actors = sorted(set(cfg.data["actors"]) & set(actors))
    train_actors, _ = split_actors(actors, cfg.data["val_actors"], cfg.data["val_fraction"], cfg.train["seed"])
    cache = FrameCache(cfg.data["cache"], train_actors, int(cfg.data["max_frames_per_clip"]) or None,
                       int(cfg.data["max_frames_per_actor"]) or None, int(cfg.train["seed"]))
    out = args.out or cfg.pairs["dir"] or os.path.join(cfg.train["output_dir"], "pairs")
    path = build_pairs(build_model(cfg), cache, out, alpha=float(cfg.pairs["alpha"]),
                       max_neutral_per_actor=int(cfg.pairs["max_neutral_per_actor"]), seed=int(cfg.train["seed"]),
                       directions=cfg.pairs["directions"], antialias=cfg.train["resize"] == "antialias")
    print(f"pseudo-pairs written to {path}")
    return 0


def _cmd_train(args) -> int:
    from .trainer import Trainer, TrainConfig

    cfg = TrainConfig.load(args.config)
    if args.output_dir:
        cfg.train["output_dir"] = args.output_dir
    trainer = Trainer(cfg, log=lambda m: print(m, flush=True) if trainer_main() else None)
    folder = trainer.train(args.max_steps)
    if trainer.acc.is_main_process:
        print(f"model saved to {folder} (step {trainer.state.step})", flush=True)
    return 0


def trainer_main() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0

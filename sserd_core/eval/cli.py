"""``sserd eval`` command line (wired into the ``sserd`` CLI through :func:`register`).

::

    sserd eval --data DATASET [--layout mead|ravdess|csv] [--protocols both] [--methods landmark,naive,source]
               [--outputs NED=/path/ned_outputs] [--arcface W] [--syncnet W] [--emotion-net W] --out RESULTS
    sserd eval make-mini OUT                 # the 2-actor synthetic mini dataset used by the tests
    sserd eval study --manifest RESULTS/study.json --db votes.sqlite
    sserd eval study-report --db votes.sqlite [--out DIR]

For MEAD and RAVDESS the tables carry the paper's published rows (supplementary Tables 1–2; the
study report: Table 3) as reference rows, from :mod:`sserd_core.metrics.paper`.

Multi-process / multi-GPU: ``accelerate launch -m sserd_core.eval --data ... --out ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .. import validate
from ..errors import SSERDError
from ..pipeline.options import EditOptions


def _add_run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dataset")
    g.add_argument("--data", help="dataset folder (MEAD, RAVDESS, or a folder with clips.csv)")
    g.add_argument("--layout", default="auto", choices=["auto", "mead", "ravdess", "csv"], help="dataset layout")
    g.add_argument("--csv", help="CSV of clips (columns path,actor,emotion[,sentence,audio]) for --layout csv")
    g.add_argument("--dataset-name", help="name in the tables (default: MEAD / RAVDESS / custom)")
    g.add_argument("--level", type=int, help="MEAD intensity level (default: the highest present)")
    g.add_argument("--protocols", default="both",
                   help="intra, cross, both (default: the official two: each emotional clip driven by itself; a "
                        "neutral clip driven by the official partner actor's, M003→W015 …), or the project's "
                        "earlier variants intra-neutral, cross-next; all = the four")
    g.add_argument("--emotions", help="comma-separated subset of the 7 emotions (default all)")
    g.add_argument("--max-per-cell", type=int, help="at most this many source clips per actor and emotion")
    g = p.add_argument_group("methods")
    g.add_argument("--methods", default="landmark,naive,source",
                   help="built-in methods: landmark (the default backend), naive (edit that also moves the mouth), "
                        "source (no edit) — default: all three")
    g.add_argument("--outputs", action="append", default=[], metavar="NAME=DIR",
                   help="another tool's outputs: DIR/<item id>.mp4 (or DIR/<protocol>/<item id>.mp4); repeatable")
    g.add_argument("--checkpoint", action="append", default=[], metavar="[NAME=]PATH",
                   help="a neural SSERD checkpoint (folder or Hub id) to render with; repeatable")
    g.add_argument("--dtype", choices=validate.DTYPES, default=EditOptions.dtype,
                   help="--checkpoint models: compute precision (default auto: bf16 on CUDA, fp32 on CPU)")
    g.add_argument("--batch-size", type=int, default=EditOptions.batch_size,
                   help="--checkpoint models: frames per network call (default 8 on CUDA, 2 on CPU)")
    g.add_argument("--noise-mode", choices=validate.NOISE_MODES, default=EditOptions.noise_mode,
                   help="--checkpoint models: decoder noise (default zero; the official test scripts: random)")
    g.add_argument("--max-face-size", type=int, default=EditOptions.max_face_size,
                   help="--checkpoint models: decode the face only up to this many px (default: full size)")
    g.add_argument("--drive", default="reference", choices=["reference", "label"],
                   help="edit towards the reference face's measured emotion (paper protocol) or the label")
    g = p.add_argument_group("paper metrics (network weights: a local path or a Hugging Face Hub id)")
    g.add_argument("--arcface", help="ArcFace model (ONNX or TorchScript) → FAD")
    g.add_argument("--syncnet", help="SyncNet weights (official syncnet_v2.model or TorchScript) → LSE-D")
    g.add_argument("--emotion-net", help="emotion-feature network (ONNX or TorchScript) → CSIM")
    g.add_argument("--emotion-net-size", type=int, default=224, help="input size of --emotion-net (default 224)")
    g.add_argument("--vshift", type=int, default=10, help="LSE-D offset search range in frames (paper: 10)")
    g = p.add_argument_group("run")
    g.add_argument("--out", default="sserd_eval", help="results folder (default ./sserd_eval)")
    g.add_argument("--embed-every", type=int, default=1, help="identity-embed every k-th frame (default 1)")
    g.add_argument("--crops", default="aligned", choices=["aligned", "frame"],
                   help="what the identity/emotion/sync networks see: aligned = the official masked, aligned "
                        "256 px face crops (default); frame = the pasted-back full frames")
    g.add_argument("--overwrite", action="store_true", help="redo clips that already have results")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``eval`` (and its ``make-mini`` / ``study`` / ``study-report`` subcommands) to the ``sserd`` CLI."""
    p = subparsers.add_parser("eval", help="evaluate editing methods on a dataset (tables like the paper's)",
                              description="Run the paper's protocols (intra-ID and cross-ID, per emotion) on MEAD, "
                                          "RAVDESS or a folder + CSV for the landmark backend, neural checkpoints "
                                          "and other tools' outputs, with the source and naive baselines; write "
                                          "paper-layout tables, charts and per-clip JSON. See docs/EVALUATION.md.",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_args(p)
    p.set_defaults(func=run_command)
    sub = p.add_subparsers(dest="eval_command", metavar="{make-mini,study,study-report}")
    m = sub.add_parser("make-mini", help="generate the 2-actor synthetic mini dataset (CSV layout)")
    m.add_argument("out", help="folder to create")
    m.add_argument("--seconds", type=float, default=1.0, help="clip length (default 1 s)")
    m.add_argument("--emotions", default="neutral,happy,sad", help="emotions to include (default neutral,happy,sad)")
    m.add_argument("--size", type=int, default=256, help="frame size in pixels (default 256)")
    m.set_defaults(func=make_mini_command)
    s = sub.add_parser("study", help="run the user-study web app (votes go to SQLite)")
    s.add_argument("--manifest", required=True, help="study.json written by `sserd eval` (or your own)")
    s.add_argument("--db", required=True, help="SQLite file for the votes (created if missing)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7861)
    s.add_argument("--share", action="store_true", help="create a public Gradio link")
    s.set_defaults(func=study_command)
    r = sub.add_parser("study-report", help="turn study votes into the per-emotion percentage table")
    r.add_argument("--db", required=True, help="SQLite file of the study")
    r.add_argument("--out", help="folder for study_report.md / .csv (default: next to the DB)")
    r.set_defaults(func=study_report_command)
    return p


def run_command(args) -> int:
    from .datasets import load_dataset, summary
    from .protocols import build_items, parse_emotions, parse_protocols
    from .runner import resolve_methods, run_items
    from .tables import write_reports

    if not args.data:
        raise SSERDError("Give the dataset folder with --data (or a subcommand: make-mini, study, study-report).")
    layout, clips = load_dataset(args.data, args.layout, args.csv, args.level)
    dataset = args.dataset_name or {"mead": "MEAD", "ravdess": "RAVDESS"}.get(layout, "custom")
    protocols = parse_protocols(args.protocols)
    items = build_items(clips, protocols, parse_emotions(args.emotions), args.max_per_cell)
    if not items:
        raise SSERDError("No evaluation items: each actor needs a neutral clip (the source) and clips of the "
                         "target emotions (the references).")
    neural = validate.neural_options(args.dtype, args.batch_size, args.noise_mode, args.max_face_size)  # before any work
    methods = resolve_methods(args.methods.split(","), args.outputs, args.checkpoint, neural)
    networks = _networks(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"sserd eval: {dataset} ({layout}) — {summary(clips)}; {len(items)} items × {len(methods)} methods",
          file=sys.stderr)
    is_main = run_items(items, methods, out, networks, args.drive, args.embed_every, args.overwrite,
                        progress=not args.no_progress, crops=args.crops)
    if not is_main:
        return 0
    names = [m.name for m in methods]
    result = write_reports(out, dataset, protocols, names)
    write_study_manifest(out, items, names)
    print(Path(result["files"]["markdown"]).read_text())
    print(f"Tables: {result['files']['markdown']}, {result['files']['csv']}; per-clip JSON: {out / 'results.json'}; "
          f"charts: {out / 'charts'}", file=sys.stderr)
    return 0


def _networks(args):
    from ..metrics import networks as nets
    from .measure import Networks

    return Networks(
        arcface=nets.ArcFaceEmbedder(args.arcface) if args.arcface else None,
        syncnet=nets.SyncNetScorer(args.syncnet, vshift=args.vshift) if args.syncnet else None,
        emotion_net=nets.EmotionFeatureNet(args.emotion_net, args.emotion_net_size) if args.emotion_net else None,
    )


def write_study_manifest(out: Path, items, methods: Sequence[str]) -> Path:
    """``study.json``: for every item, the source, the reference and each method's clip (input to the study app).

    The ``source`` baseline is left out: it is the very clip shown as the source, so it could not be anonymised.
    """
    from .runner import clip_paths

    entries = []
    for it in items:
        clips = {}
        for m in methods:
            if m == "source":
                continue
            _, json_path, _ = clip_paths(out, it, m)
            if json_path.is_file():
                rec = json.loads(json_path.read_text())
                if rec.get("output"):
                    clips[m] = rec["output"]
        if len(clips) >= 2:
            entries.append({"id": it.id, "emotion": it.emotion, "protocol": it.protocol,
                            "source": it.source.path, "reference": it.reference.path, "clips": clips})
    path = Path(out) / "study.json"
    path.write_text(json.dumps({"items": entries}, indent=1))
    return path


def make_mini_command(args) -> int:
    from .mini import make_mini_dataset

    csv_path = make_mini_dataset(args.out, seconds=args.seconds, emotions=args.emotions.split(","), size=args.size)
    print(csv_path)
    return 0


def study_command(args) -> int:
    from .study_app import build_app

    app = build_app(args.manifest, args.db)
    app.launch(server_name=args.host, server_port=args.port, share=args.share, allowed_paths=app.study_allowed_paths)
    return 0


def study_report_command(args) -> int:
    from .study_app import write_study_report

    md = write_study_report(args.db, args.out)
    print(Path(md).read_text())
    return 0

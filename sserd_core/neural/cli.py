"""``sserd prototypes``: label emotion prototypes for a converted neural model folder.

A command of the neural backend rather than of :mod:`sserd_core.models.convert`: it encodes
reference faces with the neural editor (face detection, alignment, the reference encoder),
which sits above :mod:`sserd_core.models`. Registering it is cheap: torch and the editor
load only when the command runs.
"""

from __future__ import annotations

from pathlib import Path


def _cmd_prototypes(args) -> int:
    from ..models.prototypes import PROTOTYPES_FILE
    from .prototypes import compute_prototypes

    counts = compute_prototypes(args.ref_dir, args.model_dir, device=args.device)
    print("emotion prototypes written to", Path(args.model_dir) / PROTOTYPES_FILE)
    for label, n in counts.items():
        print(f"  {label}: {n} image(s)")
    return 0


def register(subparsers) -> None:
    """Add ``sserd prototypes`` to an argparse ``subparsers`` object.

    The subparser sets ``func(args) -> int``; errors are raised as :class:`~sserd_core.errors.SSERDError`.
    """
    q = subparsers.add_parser("prototypes", help="compute label emotion prototypes for a neural model folder",
                              description="Encode reference images REF_DIR/<emotion>/*.png|jpg and store the "
                                          "mean reference code per emotion in MODEL_DIR/emotion_prototypes."
                                          "safetensors, so the model can edit to a label (e.g. --emotion happy).")
    q.add_argument("ref_dir", help="folder with one sub-folder per emotion (neutral, angry, disgusted, fear, "
                                   "happy, sad, surprised) of face images")
    q.add_argument("model_dir", help="a converted model folder (written in place)")
    q.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    q.set_defaults(func=_cmd_prototypes)

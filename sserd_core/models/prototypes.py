"""Label emotion prototypes of a neural model folder: the mean reference code per emotion.

A model folder may hold ``emotion_prototypes.safetensors`` (``{emotion: code [n_styles, d]}``),
which lets the neural backend edit to a label or a curve (an extension of this project: the
paper always drives with reference frames). :func:`compute_prototypes` averages the codes of
reference images ``REF_DIR/<emotion>/*`` into it; the encoder that turns one image into a
code (face detection, alignment, the network's reference encoder) is passed in, so this module
needs nothing above :mod:`sserd_core.models` — :func:`sserd_core.neural.compute_prototypes`
supplies the neural editor's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Optional, Union

import torch

from ..emotion import EMOTIONS, canonical_label
from ..errors import SSERDError
from .hub import is_model_dir

PROTOTYPES_FILE = "emotion_prototypes.safetensors"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

#: one reference image → its reference code, or None when the image shows no face
Encoder = Callable[[Path], Optional[torch.Tensor]]


def load_prototypes(model_dir: Union[str, os.PathLike]) -> dict[str, torch.Tensor]:
    """``{emotion: reference code [n_styles, d]}`` from ``model_dir/emotion_prototypes.safetensors`` ({} if absent)."""
    path = Path(model_dir) / PROTOTYPES_FILE
    if not path.is_file():
        return {}
    from safetensors.torch import load_file

    return {canonical_label(k): v.float() for k, v in load_file(str(path)).items()}


def list_reference_images(ref_dir: Path) -> dict[str, list[Path]]:
    """``{emotion: image paths}`` from ``ref_dir/<emotion>/*`` (sub-folders must be emotion names)."""
    if not ref_dir.is_dir():
        raise SSERDError(f"{ref_dir} is not a folder; give a folder with one sub-folder per emotion.")
    found: dict[str, list[Path]] = {}
    for sub in sorted(p for p in ref_dir.iterdir() if p.is_dir()):
        try:
            label = canonical_label(sub.name)
        except SSERDError:
            raise SSERDError(f"Folder '{sub.name}' in {ref_dir} is not an emotion name; use: "
                             f"{', '.join(EMOTIONS)}.") from None
        images = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found.setdefault(label, []).extend(images)
    if not found:
        raise SSERDError(f"No images found in emotion sub-folders of {ref_dir} (e.g. {ref_dir}/happy/*.png).")
    return found


def compute_prototypes(ref_dir: Union[str, os.PathLike], model_dir: Union[str, os.PathLike],
                       make_encoder: Callable[[Path], Encoder]) -> dict[str, int]:
    """Mean reference code per emotion from ``ref_dir/<emotion>/*`` images → ``model_dir/emotion_prototypes.safetensors``.

    ``make_encoder(model_dir)`` is called once, after the folders have been checked, and
    returns the function that encodes one image (None: no face in it). Existing prototypes
    for emotions not in ``ref_dir`` are kept. Returns ``{emotion: number of images with a
    face used}``. ``model_dir`` must be a local folder.
    """
    from safetensors.torch import save_file

    model_dir = Path(model_dir)
    if not is_model_dir(model_dir):
        raise SSERDError(f"{model_dir} is not a local SSERD model folder (no config.json).")
    images = list_reference_images(Path(ref_dir))
    encode = make_encoder(model_dir)
    protos = {k: v.cpu() for k, v in load_prototypes(model_dir).items()}
    counts = {}
    for label, paths in images.items():
        codes = []
        for p in paths:
            code = encode(p)
            if code is not None:
                codes.append(code.float().cpu())
        if not codes:
            raise SSERDError(f"No face found in any of the {len(paths)} '{label}' image(s) in {ref_dir}.")
        protos[label] = torch.stack(codes).mean(0)
        counts[label] = len(codes)
    meta = {"counts": json.dumps(counts), "source": str(Path(ref_dir).name)}
    save_file({k: v.contiguous() for k, v in protos.items()}, str(model_dir / PROTOTYPES_FILE), metadata=meta)
    return counts

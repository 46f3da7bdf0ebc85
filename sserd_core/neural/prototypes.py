"""Label prototypes for the neural backend: the mean reference code per emotion, encoded by the model.

The averaging and the file format live in :mod:`sserd_core.models.prototypes` (no torch model needed
there); this module supplies the encoder: the largest face of each image, aligned and encoded by the
model's reference encoder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import torch

from .editor import NeuralEditor, _largest_face


def compute_prototypes(ref_dir: Union[str, os.PathLike], model_dir: Union[str, os.PathLike], device=None,
                       dtype=None) -> dict[str, int]:
    """Mean reference code per emotion from ``ref_dir/<emotion>/*`` images → ``model_dir/emotion_prototypes.safetensors``.

    Existing prototypes for emotions not in ``ref_dir`` are kept. Returns
    ``{emotion: number of images with a face used}``. ``model_dir`` must be a local folder.
    The averaging and the file live in :func:`sserd_core.models.prototypes.compute_prototypes`;
    this supplies the encoder: the largest face of each image, aligned and encoded by the
    model's reference encoder.
    """
    from ..media import read_image
    from ..models import prototypes
    from ..models.sserd import SSERDNet

    def make_encoder(folder: Path):
        editor = NeuralEditor(SSERDNet.from_pretrained(str(folder)), device=device, dtype=dtype)

        def encode(path: Path) -> Optional[torch.Tensor]:
            rgb = read_image(path)
            lm = _largest_face(rgb)
            return None if lm is None else editor.encode_reference(rgb, lm)

        return encode

    return prototypes.compute_prototypes(ref_dir, model_dir, make_encoder)

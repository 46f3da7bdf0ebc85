"""Core ``IMAGE`` batches built frame by frame (only when an IMAGE output is connected)."""

from __future__ import annotations

import numpy as np
import torch

from sserd_core import media


class ImageBatch:
    """A float32 ``[N, H, W, 3]`` tensor in 0..1, allocated once and filled one frame at a time
    (no list of frames and no stacking copy, so the peak is the tensor itself)."""

    def __init__(self, n: int, height: int, width: int):
        self.tensor = torch.zeros((n, height, width, 3), dtype=torch.float32)
        self.count = 0

    def put(self, index: int, rgb: np.ndarray) -> None:
        self.tensor[index].copy_(torch.from_numpy(rgb)).div_(255.0)
        self.count = max(self.count, index + 1)

    def result(self) -> torch.Tensor:
        return self.tensor[: self.count]

    @classmethod
    def from_video(cls, info: media.VideoInfo) -> torch.Tensor:
        batch = cls(info.n_frames, info.height, info.width)
        for fr in media.iter_frames(info):
            batch.put(fr.index, fr.rgb)
        return batch.result()


def image_to_rgb(image: torch.Tensor) -> np.ndarray:
    """First image of a core ``IMAGE`` batch → uint8 RGB ``[H, W, 3]``."""
    img = image[0] if image.ndim == 4 else image
    return img[..., :3].clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()

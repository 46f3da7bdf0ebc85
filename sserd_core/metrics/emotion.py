"""Emotion proxies from the landmark emotion measure of :mod:`sserd_core.expression`.

The paper's CSIM is the cosine similarity of *emotion features* (from an emotion
recognition network) of generated vs reference frames. Offline, the emotion vector
(``[7]``, :mod:`sserd_core.emotion`) measured from landmarks plays that role:

- **EmoCos (landmark)**: mean over generated frames of the cosine similarity between the
  frame's measured emotion vector and the emotion vector measured on the reference face.
- **EmoAcc (landmark)**: fraction of generated frames whose strongest measured emotion
  (argmax of the vector) is the target emotion — a 7-way classification accuracy.

Both depend on the landmark emotion measure, which is hand-designed (FACS action units)
rather than learned; they check that the geometry of the target emotion is present,
not how convincing the pixels look.
"""

from __future__ import annotations

import numpy as np

from ..emotion import EMOTIONS, canonical_label

EMO_COS = "EmoCos (landmark)"
EMO_ACC = "EmoAcc (landmark)"


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of ``a`` ``[N, D]`` and ``b`` ``[D]`` or ``[N, D]`` (NaN where a norm is 0 or NaN)."""
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.broadcast_to(np.asarray(b, np.float64), a.shape)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (a * b).sum(1) / (na * nb)
    return np.where((na > 0) & (nb > 0), c, np.nan)


def emotion_cosine(generated: np.ndarray, reference: np.ndarray) -> float:
    """EmoCos: mean cosine of per-frame emotion vectors ``[N, 7]`` with the reference vector ``[7]`` (NaN frames skipped)."""
    c = cosine_similarity(generated, reference)
    return float(np.nanmean(c)) if np.isfinite(c).any() else float("nan")


def predicted_labels(vectors: np.ndarray) -> list:
    """The strongest emotion of each vector ``[N, 7]`` (None for NaN rows)."""
    v = np.atleast_2d(np.asarray(vectors, np.float64))
    return [EMOTIONS[int(np.argmax(r))] if np.isfinite(r).all() else None for r in v]


def target_accuracy(generated: np.ndarray, target: str) -> float:
    """EmoAcc: fraction of frames (with a face) whose argmax emotion is ``target``."""
    target = canonical_label(target)
    labels = [x for x in predicted_labels(generated) if x is not None]
    return float(np.mean([x == target for x in labels])) if labels else float("nan")

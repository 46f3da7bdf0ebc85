"""The two baselines every evaluation table carries.

- ``source`` — **no edit**: the unedited source clip itself. It shows what identity and
  mouth metrics score when nothing changes (perfect mouth, zero identity drift) and how
  far the source is from the target emotion.
- ``naive`` — **an edit that also moves the mouth**: the same landmark warp as the
  default backend, but the whole lower face takes the target expression on the person's
  *neutral* mouth: the emotion displacement is applied to every point (nothing pinned)
  and the mouth and lower jaw are set to the neutral face's with the lips closed + the
  emotion's, so the lips stop following the speech. It is what an expression transfer that ignores speech
  content does, and the gap to the default backend on M-LMD / M-Open corr (and LSE-D
  with SyncNet) is what keeping the speech buys.
"""

from __future__ import annotations

import numpy as np

from .. import expression, geometry
from ..editor import FaceFrame
from ..emotion import emotion_vector
from ..landmark.render import LandmarkEditor

#: points the naive edit replaces by the neutral face + emotion (mouth and lower jaw)
LOWER_FACE = list(range(4, 13)) + list(range(48, 68))


def closed_mouth(face: np.ndarray) -> np.ndarray:
    """Canonical landmarks ``[68, 2]`` with the inner-lip gap closed (lower lip and jaw raised by the gap)."""
    X = np.array(face, np.float32)
    gap = float(np.mean([X[l, 1] - X[u, 1] for u, l in ((61, 67), (62, 66), (63, 65))]))
    gap = max(gap, 0.0)
    X[[65, 66, 67] + list(range(55, 60)), 1] -= gap
    X[list(range(4, 13)), 1] -= 0.5 * gap
    return X


def _from_canonical(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    A, b = T[:, :2].astype(np.float64), T[:, 2].astype(np.float64)
    return ((np.asarray(pts, np.float64) - b) @ np.linalg.inv(A).T).astype(np.float32)


class NaiveMouthEditor(LandmarkEditor):
    """Landmark warp whose target also changes the speech content (the mouth follows the emotion, not the speech)."""

    name = "naive"

    def target_landmarks(self, face: FaceFrame, target: np.ndarray) -> np.ndarray:
        src_canon = geometry.apply(face.to_canonical, face.landmarks)
        delta = expression.edit_displacement(target, face.source_emotion)[:68]
        dst = src_canon + delta  # nothing pinned
        neutral_lower = (closed_mouth(face.neutral)
                         + expression.edit_displacement(target, emotion_vector("neutral"))[:68])[LOWER_FACE]
        # keep the lower face attached where it is: align the neutral mouth's centre with the source's
        shift = src_canon[[33]].mean(0) - face.neutral[[33]].mean(0)
        dst[LOWER_FACE] = neutral_lower + shift
        return _from_canonical(face.to_canonical, dst)

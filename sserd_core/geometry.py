"""Face geometry, defined once: the canonical face space, the similarity fit, the mouth opening.

Used by the expression model (:mod:`sserd_core.expression`), the landmark editor, the metrics and
the evaluation, and the neural backend's alignment, so that "mouth opening" in a :class:`~sserd_core.pipeline.RenderResult` and
the evaluation's M-Open are the same quantity, measured the same way.

- **Canonical face space**: the similarity (rotation, uniform scale, translation) that puts the
  eye centres — the midpoints of each eye's corners (landmarks 36/39 and 42/45) — at
  (−0.5, 0) and (+0.5, 0). Its unit is the inter-ocular distance (IOD); +y points down the face.
- **Mouth opening**: the mean vertical gap (canonical y, IOD units) of the three inner-lip
  point pairs (61, 67), (62, 66), (63, 65) — positive when the lips are apart.
- **Similarity fit**: Umeyama's closed-form least-squares similarity (no reflection).

Landmarks are the 68-point iBUG layout, ``[..., 68, 2]`` in pixels; NaN landmarks give NaN.
"""

from __future__ import annotations

import numpy as np

#: eye corners (outer, inner) of the face's right and left eye
RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS = (36, 39), (42, 45)
#: inner-lip point pairs (upper, lower) whose mean vertical gap is the mouth opening
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
MOUTH = np.arange(48, 68)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lm = np.asarray(landmarks, np.float64)
    right = (lm[..., RIGHT_EYE_CORNERS[0], :] + lm[..., RIGHT_EYE_CORNERS[1], :]) / 2
    left = (lm[..., LEFT_EYE_CORNERS[0], :] + lm[..., LEFT_EYE_CORNERS[1], :]) / 2
    return right, left


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the eye centres (pixels), ``[...]``."""
    right, left = eye_centres(landmarks)
    return np.linalg.norm(left - right, axis=-1)


def canonical_transform(landmarks: np.ndarray) -> np.ndarray:
    """Similarity ``float32 [2, 3]`` mapping frame pixels → canonical face space, for one face ``[68, 2]``."""
    right, left = eye_centres(landmarks)
    centre = (right + left) / 2
    d = left - right
    iod = max(1e-6, float(np.hypot(*d)))
    c, s = d / iod
    R = np.array([[c, s], [-s, c]]) / iod
    return np.hstack([R, (-R @ centre)[:, None]]).astype(np.float32)


def apply(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply an affine ``[2, 3]`` to points ``[K, 2]``."""
    T = np.asarray(T, np.float32)
    return (np.asarray(pts, np.float32) @ T[:, :2].T + T[:, 2]).astype(np.float32)


def to_canonical(landmarks: np.ndarray) -> np.ndarray:
    """One face's landmarks ``[68, 2]`` (pixels) in canonical face space, through its
    :func:`canonical_transform` (float32 throughout: what the expression model measures and edits on;
    :func:`canonicalise` is the vectorised float64 form the metrics use)."""
    return apply(canonical_transform(landmarks), landmarks)


def displacement_to_frame(T: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Map a canonical displacement ``[K, 2]`` to frame pixels (linear part of ``T``'s inverse)."""
    return (np.asarray(delta, np.float32) @ np.linalg.inv(T[:, :2]).T).astype(np.float32)


def canonicalise(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks ``[..., 68, 2]`` (pixels) in canonical face space (vectorised over faces; NaN stays NaN)."""
    lm = np.asarray(landmarks, np.float64)
    right, left = eye_centres(lm)
    centre = (right + left) / 2
    axis = left - right
    scale = np.linalg.norm(axis, axis=-1, keepdims=True)
    scale = np.where(scale > 0, scale, np.nan)
    ux = axis / scale
    uy = np.stack([-ux[..., 1], ux[..., 0]], -1)  # perpendicular, pointing down the face
    rel = lm - centre[..., None, :]
    x = (rel * ux[..., None, :]).sum(-1) / scale
    y = (rel * uy[..., None, :]).sum(-1) / scale
    return np.stack([x, y], -1).astype(np.float32)


def opening_of_canonical(X: np.ndarray) -> np.ndarray:
    """Mouth opening ``[...]`` (IOD units) of canonical landmarks ``[..., 68, 2]``."""
    X = np.asarray(X)
    return np.mean([X[..., lo, 1] - X[..., up, 1] for up, lo in INNER_LIP_PAIRS], axis=0)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mouth opening ``[...]`` (IOD units) of landmarks ``[..., 68, 2]`` in pixels (a float for one face)."""
    out = opening_of_canonical(canonicalise(landmarks))
    return float(out) if np.ndim(out) == 0 else out


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``float64 [2, 3]`` mapping points ``src`` ``[N, 2]`` → ``dst`` (Umeyama, no reflection)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ sign @ vt
    var = (s ** 2).sum(1).mean()
    scale = float((sig * np.diag(sign)).sum() / var) if var > 0 else 1.0
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])

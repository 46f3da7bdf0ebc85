"""What is measured on a face in the canonical face space: speech content (lip opening, mouth width)
and the content-insensitive emotion features, with the population neutral face they are read against."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from .. import geometry


def _eye_line(X):
    return X[[36, 39, 42, 45], 1].mean()


def content_features(X: np.ndarray) -> np.ndarray:
    """Speech content ``[2]`` of canonical landmarks: inner-lip opening and mouth width (IOD units)."""
    opening = geometry.opening_of_canonical(X)
    width = X[64, 0] - X[60, 0]
    return np.array([opening, width], np.float32)


FEATURES = ("inner_brow", "outer_brow", "brow_gap", "upper_lid", "lower_lid", "nose_wing", "lip_corner",
            "mouth_width", "upper_lip")
#: per-feature weight in the emotion fit (≈ 1 / typical landmark noise of that feature)
_FEATURE_WEIGHT = np.array([1.0, 1.0, 0.7, 1.3, 1.3, 1.0, 1.2, 0.5, 0.6], np.float32)
#: how much each feature of a *neutral* face varies from person to person (IOD units, about
#: 1.5 standard deviations of adult faces): a difference from the population neutral smaller
#: than this is taken as the person's build, not as an expression
IDENTITY_SPREAD = np.array([0.07, 0.07, 0.07, 0.045, 0.02, 0.09, 0.02, 0.035, 0.05], np.float32)


def identity_tolerant(feature_delta: np.ndarray) -> np.ndarray:
    """A feature change relative to the *population* neutral with each feature's person-to-person
    spread (:data:`IDENTITY_SPREAD`) taken off its magnitude (soft threshold)."""
    d = np.asarray(feature_delta, np.float32)
    return np.sign(d) * np.maximum(np.abs(d) - IDENTITY_SPREAD, 0.0)


def emotion_features(X: np.ndarray) -> np.ndarray:
    """Content-insensitive geometric features ``[9]`` of canonical landmarks ``[68, 2]`` (IOD units).

    Heights are measured upwards (bigger = higher). ``lip_corner`` is the corners' height
    above the middle of the inner-lip gap, so opening the mouth does not read as an emotion.
    """
    ey = _eye_line(X)
    inner_brow = ey - X[[21, 22], 1].mean()
    outer_brow = ey - X[[17, 18, 25, 26], 1].mean()
    brow_gap = X[22, 0] - X[21, 0]
    upper_lid = (X[36, 1] + X[39, 1]) / 2 - X[[37, 38], 1].mean() + (X[42, 1] + X[45, 1]) / 2 - X[[43, 44], 1].mean()
    lower_lid = X[[40, 41], 1].mean() - (X[36, 1] + X[39, 1]) / 2 + X[[46, 47], 1].mean() - (X[42, 1] + X[45, 1]) / 2
    nose_wing = X[[31, 35], 1].mean() - ey
    mid_gap = (X[62, 1] + X[66, 1]) / 2
    lip_corner = mid_gap - X[[48, 54, 60, 64], 1].mean()
    mouth_width = X[54, 0] - X[48, 0]
    upper_lip = X[51, 1] - X[33, 1]
    return np.array([inner_brow, outer_brow, brow_gap, upper_lid, -lower_lid, -nose_wing, lip_corner,
                     mouth_width, -upper_lip], np.float32)


@functools.lru_cache(maxsize=1)
def population_neutral() -> np.ndarray:
    """A neutral face in canonical space ``[68, 2]`` (see ``sserd_core/data/neutral_68.json`` for provenance)."""
    data = json.loads((Path(__file__).parent.parent / "data" / "neutral_68.json").read_text())
    return np.asarray(data["landmarks"], np.float32)

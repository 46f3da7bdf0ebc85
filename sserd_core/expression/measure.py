"""Measuring faces in pixels: a reference image's faces (the target they ask for), one frame's
emotion and mouth opening against a tracked person's neutral."""

from __future__ import annotations

import numpy as np

from .. import geometry
from ..geometry import to_canonical
from .features import (content_features, emotion_features, identity_tolerant, population_neutral)
from .fit import fit_emotion, reference_target, reference_weights


def measure_image(rgb: np.ndarray) -> list[np.ndarray]:
    """Target emotion vectors of the faces in an image, largest face first.

    Each face is measured against the population neutral with the person-to-person spread
    of neutral faces taken off (:func:`identity_tolerant`), then brought to full strength by
    :func:`reference_target`, so a reference face's emotion lands as strongly as a label's.
    """
    from ..face import detect_landmarks

    f_pop = emotion_features(population_neutral())
    out = []
    for lm in detect_landmarks(rgb):
        X = to_canonical(lm)
        d = identity_tolerant(emotion_features(X) - f_pop)
        out.append(reference_target(fit_emotion(d, dead_zone=0.03, weights=reference_weights(X))))
    return out


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip opening of a face in IOD units (speech content; :func:`sserd_core.geometry.mouth_opening`)."""
    return float(geometry.mouth_opening(landmarks))


def measure_frame(rgb: np.ndarray, hint_landmarks: np.ndarray, content) -> tuple[np.ndarray, float]:
    """(emotion vector ``[7]``, mouth opening) of the face in ``rgb``, from landmarks fitted to these pixels.

    The fit starts from a box around ``hint_landmarks`` (no detection), so this is cheap;
    the emotion is relative to ``content``'s neutral estimate of the person.
    """
    from ..face import fit_landmarks

    x0, y0 = hint_landmarks.min(0)
    x1, y1 = hint_landmarks.max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2 - 0.05 * (y1 - y0), 0.525 * max(x1 - x0, y1 - y0)
    lm = fit_landmarks(rgb, (cx - half, cy - half, cx + half, cy + half))
    X = to_canonical(lm)
    c = content_features(X)
    # the same speech-coupling correction the source estimate had, so speech does not read as emotion
    f = emotion_features(X) - (c - content.median_content()) @ content.coupling()
    return fit_emotion(f - content.neutral_features, dead_zone=0.0), float(c[0])

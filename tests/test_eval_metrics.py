"""Evaluation metrics on synthetic cases with known answers, and the metric names."""

from __future__ import annotations

import numpy as np
import pytest

from sserd_core import expression
from sserd_core.emotion import EMOTIONS, emotion_vector
from sserd_core.errors import SSERDError
from sserd_core.metrics import METRICS, PAPER_ORDER, PROXY_ORDER
from sserd_core.metrics.emotion import emotion_cosine, predicted_labels, target_accuracy
from sserd_core.metrics.frechet import (frechet_distance, frechet_distance_features, frechet_distance_scipy,
                                        gaussian_stats)
from sserd_core.metrics.mouth import (MOUTH, canonicalise, mouth_landmark_distance, mouth_opening,
                                      opening_correlation)


# --------------------------------------------------------------------------- Fréchet

def test_frechet_closed_form_gaussians():
    rng = np.random.default_rng(0)
    d = 6
    a, b = rng.uniform(0.2, 3.0, d), rng.uniform(0.2, 3.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # diagonal covariances: d² = |mu1-mu2|² + Σ (√a - √b)²
    expected = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    # a common rotation of both Gaussians does not change the distance
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    rotated = frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-7)
    # general (non-commuting) covariances agree with the textbook sqrtm(S1 S2) formula
    s1 = (m := rng.normal(size=(d, d))) @ m.T + 0.1 * np.eye(d)
    s2 = (m := rng.normal(size=(d, d))) @ m.T + 0.1 * np.eye(d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance_scipy(mu1, s1, mu2, s2), rel=1e-6)
    # 1-D: (m1-m2)² + (σ1-σ2)²
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + 1)


def test_frechet_from_samples_converges_to_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (20000, 3))
    y = rng.normal(0, 2, (20000, 3)) + [1, 0, 0]
    # d² = 1 + 3 * (2 - 1)² = 4
    assert frechet_distance_features(x, y) == pytest.approx(4.0, abs=0.1)


def test_frechet_identical_sets_is_zero_and_needs_two_rows():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 128))  # fewer samples than dimensions: rank-deficient covariance
    assert frechet_distance_features(x, x.copy()) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance_features(x, x + 0.5) > 0.5 ** 2 * 128 * 0.99
    with pytest.raises(SSERDError):
        gaussian_stats(np.vstack([x[:1], np.full((3, 128), np.nan)]))


# --------------------------------------------------------------------------- mouth

def _face_sequence(n=20, seed=0):
    """Talking-face landmark sequence [n, 68, 2] in pixels: the population neutral, mouth opening over time."""
    neutral = expression.population_neutral()
    rng = np.random.default_rng(seed)
    opening = 0.15 * (0.5 + 0.5 * np.sin(np.linspace(0, 4 * np.pi, n)))
    seq = np.repeat(neutral[None], n, 0).copy()
    seq[:, [65, 66, 67] + list(range(55, 60)), 1] += opening[:, None]
    seq += rng.normal(0, 0.002, seq.shape)
    # to pixels: scale 80 px per inter-ocular distance, a rotation and an offset
    ang = 0.1
    R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    return (seq @ R.T * 80 + [200, 150]).astype(np.float32), opening


def test_canonicalise_puts_eyes_at_unit_positions():
    seq, _ = _face_sequence(3)
    c = canonicalise(seq)
    # eye centres = the midpoints of each eye's corners (sserd_core.geometry, shared with the editor)
    assert np.allclose((c[:, 36] + c[:, 39]) / 2, [-0.5, 0], atol=1e-4)
    assert np.allclose((c[:, 42] + c[:, 45]) / 2, [0.5, 0], atol=1e-4)


def test_mlmd_zero_for_identical_and_grows_with_mouth_shift():
    seq, _ = _face_sequence()
    assert mouth_landmark_distance(seq, seq.copy()) == pytest.approx(0.0, abs=1e-6)
    # a uniformly rescaled / moved copy of the same face: still 0 (distance is in face units)
    moved = seq * 1.7 + [31, -12]
    assert mouth_landmark_distance(moved, seq) == pytest.approx(0.0, abs=1e-5)
    iod = np.linalg.norm((seq[:, 42] + seq[:, 45]) / 2 - (seq[:, 36] + seq[:, 39]) / 2, axis=1).mean()
    dists = []
    for shift_iod in (0.05, 0.1, 0.2):
        shifted = seq.copy()
        shifted[:, MOUTH, 1] += shift_iod * iod
        dists.append(mouth_landmark_distance(shifted, seq))
    assert dists[0] == pytest.approx(0.05, rel=0.02)
    assert dists[0] < dists[1] < dists[2]
    # frames without a face are skipped, not counted as 0
    holes = seq.copy()
    holes[::2] = np.nan
    assert mouth_landmark_distance(holes, seq) == pytest.approx(0.0, abs=1e-6)


def test_mouth_opening_correlation():
    seq, opening = _face_sequence(40)
    measured = mouth_opening(seq)
    assert np.corrcoef(measured, opening)[0, 1] > 0.99
    assert opening_correlation(measured, measured) == pytest.approx(1.0)
    assert opening_correlation(measured, -measured) == pytest.approx(-1.0)
    still = np.full_like(measured, 0.05)
    assert opening_correlation(still, measured) == 0.0  # a mouth that does not move carries no speech
    assert np.isnan(opening_correlation(measured[:2], measured[:2]))


# --------------------------------------------------------------------------- emotion

def test_emotion_classifier_on_hand_made_faces():
    """Landmark faces made by hand from the FACS fields: the measure must name each emotion."""
    neutral = expression.population_neutral()
    for label in EMOTIONS:
        face = neutral + expression.emotion_displacement(emotion_vector(label, 0.9))
        pixels = face * 90 + [320, 240]
        measured = expression.measure_landmarks(pixels, dead_zone=0.0)
        assert predicted_labels(measured[None])[0] == label, (label, np.round(measured, 2))
        assert target_accuracy(measured[None], label) == 1.0
        assert emotion_cosine(measured[None], emotion_vector(label, 0.9)) > 0.9


def test_emotion_cosine_and_accuracy_values():
    happy, sad = emotion_vector("happy", 1.0), emotion_vector("sad", 1.0)
    frames = np.stack([happy, happy, sad, np.full(7, np.nan)])
    assert emotion_cosine(frames[:2], happy) == pytest.approx(1.0)
    assert emotion_cosine(frames[2:3], happy) == pytest.approx(0.0)
    assert emotion_cosine(frames, happy) == pytest.approx(2 / 3)  # NaN frame skipped
    assert target_accuracy(frames, "joy") == pytest.approx(2 / 3)  # aliases accepted, NaN skipped
    with pytest.raises(SSERDError):
        target_accuracy(frames, "bored")


# --------------------------------------------------------------------------- metric names
# (the paper's reference rows: tests/test_paper_reference.py, against the shared transcription)

def test_proxies_never_use_paper_names():
    for name in PROXY_ORDER:
        assert name not in PAPER_ORDER and not METRICS[name].paper
        assert name not in ("FAD", "LSE-D", "CSIM")
    assert [m for m in METRICS if METRICS[m].paper] == ["FAD", "LSE-D", "CSIM"]
    assert "dlib" in "".join(n for n in PROXY_ORDER if "FD" in n)

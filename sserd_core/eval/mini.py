"""A 2-actor synthetic mini dataset in the CSV layout (for tests and quick demos of ``sserd eval``).

Actors: the project's two sample talking faces, ``assets/sample_hopper.mp4`` (Grace
Hopper portrait) and ``assets/sample.mp4`` (astronaut portrait), both animated by
``scripts/make_sample_clip.py`` and speaking the same espeak-ng sentence. For each actor:

- ``neutral``: a ``seconds``-long segment of the sample clip, resized to ``size``² (with audio);
- every other emotion: that neutral clip edited by the landmark backend to the label at
  intensity 0.8 — a *stand-in* for a recorded emotional clip (no real emotional
  recordings are available offline). Because of that, intra-ID numbers of the landmark
  method on this dataset are optimistic (its edits are compared with its own edits'
  identity statistics); the mini dataset exercises the harness, it does not benchmark.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence, Union

from .. import media, pipeline
from ..emotion import EmotionSpec, canonical_label
from ..errors import SSERDError

ROOT = Path(__file__).resolve().parents[2]
ACTORS = {"hopper": ROOT / "assets" / "sample_hopper.mp4", "astronaut": ROOT / "assets" / "sample.mp4"}


def _segment(src: Path, out: Path, start: float, seconds: float, size: int) -> None:
    info = media.probe_video(src, start=start, end=start + seconds)
    pipeline.write_clip(info, out, (str(src), start, start + seconds), size=(size, size))


def make_mini_dataset(out_dir: Union[str, Path], seconds: float = 1.0, emotions: Sequence[str] = ("neutral", "happy", "sad"),
                      size: int = 256, start: float = 0.6) -> Path:
    """Write the clips and ``clips.csv`` into ``out_dir``; returns the CSV path. Existing clips are kept."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    emotions = [canonical_label(e) for e in emotions]
    if "neutral" not in emotions:
        emotions = ["neutral"] + emotions
    rows = []
    for actor, src in ACTORS.items():
        if not src.is_file():
            raise SSERDError(f"{src} is missing; create it with scripts/make_sample_clip.py "
                             f"(--face {'hopper' if actor == 'hopper' else 'astronaut'}).")
        neutral = out / f"{actor}_neutral_s01.mp4"
        if not neutral.is_file():
            _segment(src, neutral, start, seconds, size)
        rows.append((neutral.name, actor, "neutral", "s01"))
        for emo in emotions:
            if emo == "neutral":
                continue
            clip = out / f"{actor}_{emo}_s01.mp4"
            if not clip.is_file():
                pipeline.edit_video(neutral, clip, EmotionSpec.from_label(emo, 0.8))
            rows.append((clip.name, actor, emo, "s01"))
    csv_path = out / "clips.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "actor", "emotion", "sentence"])
        w.writerows(rows)
    return csv_path

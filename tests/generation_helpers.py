"""One encode generation: is an edited file encoded once from the source's decoded frames?

Used by the ComfyUI and Space tests (issue 13, item 3). The reference is a direct decode →
libx264 ``veryfast`` crf 18 encode of the same source frames (``sserd_core.media.VideoWriter``,
the settings every SSERD output uses). Outside the face — pixels the edit leaves untouched,
found by rendering the same edit here and widening what it changed by 16 px — the edited file
must be

- within 1 grey level (mean absolute difference) of that direct encode, and
- as close to the decoded source as the direct encode is (+0.25 grey levels): a lossy
  intermediate (trim, conform) in between adds a second generation's error (about +0.9 grey
  levels on the sample clip), which this catches even where x264's frame-level rate control
  (mb-tree looks ahead) makes two first-generation encodes of slightly different frames
  differ by ~1 grey level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import av
import numpy as np

#: an extra lossy generation costs ~0.9 grey levels on the sample clip; encoder noise stays under this
GENERATION_SLACK = 0.25


def decode_rgb(path) -> list:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def source_frames(info, fps: float = 0.0) -> list:
    """``(rgb, time)`` of the source range ``info``; at ``fps`` > 0 the frame shown at each time k / fps."""
    from sserd_core import media

    frames = [(fr.rgb, fr.time) for fr in media.iter_frames(info)]
    if not fps:
        return frames
    times = np.array([t for _, t in frames])
    n_out = int(np.ceil((times[-1] + 1 / info.fps_float) * fps - 1e-6))
    return [(frames[int(np.searchsorted(times, k / fps + 1e-6, side="right")) - 1][0], k / fps) for k in range(n_out)]


def direct_encode(frames: list, width: int, height: int, rate, out: Path) -> Path:
    from sserd_core import media

    with media.VideoWriter(str(out), width, height, rate) as w:
        for rgb, t in frames:
            w.write(rgb, t)
    return out


def untouched_mask(info, frames: list, emotion, scratch: Path, margin: int = 16) -> np.ndarray:
    """Pixels the edit changes in no frame (rendered here, before any encode), ``margin`` px away from any it does."""
    import cv2

    from sserd_core import pipeline

    content = pipeline.disentangle_content(info)
    src = [rgb for rgb, _ in source_frames(info)]
    changed = np.zeros((info.height, info.width), bool)

    def sink(i, rgb):
        changed[...] |= (rgb != src[i]).any(-1)

    pipeline.render_face(content, emotion, scratch, measure=False, frame_sink=sink)
    k = 2 * margin + 1
    return cv2.dilate(changed.astype(np.uint8), np.ones((k, k), np.uint8)) == 0


def generation_report(edited, direct, frames: list, keep: np.ndarray) -> dict:
    """Mean absolute differences outside the face (``keep``): edited vs direct, and each vs the source pixels."""
    got, want = decode_rgb(edited), decode_rgb(direct)
    assert len(got) == len(want) == len(frames), (len(got), len(want), len(frames))

    def mad(a, b):
        return float(np.abs(a.astype(np.int16) - b.astype(np.int16))[keep].mean())

    to_direct = [mad(a, b) for a, b in zip(got, want)]
    return {
        "frames": len(got), "outside_face_fraction": round(float(keep.mean()), 3),
        "edited_vs_direct_mean": round(float(np.mean(to_direct)), 3),
        "edited_vs_direct_max_frame": round(float(np.max(to_direct)), 3),
        "edited_vs_source": round(float(np.mean([mad(a, s) for a, (s, _) in zip(got, frames)])), 3),
        "direct_vs_source": round(float(np.mean([mad(b, s) for b, (s, _) in zip(want, frames)])), 3),
        "edit_inside_face": round(float(np.mean([np.abs(a.astype(np.int16) - b)[~keep].mean()
                                                 for a, b in zip(got, want)])) if (~keep).any() else 0.0, 3),
    }


def check_one_generation(report: dict, what: str) -> None:
    assert report["outside_face_fraction"] > 0.3, (what, report)
    assert report["edited_vs_direct_mean"] <= 1.0, (what, report)
    assert report["edited_vs_source"] <= report["direct_vs_source"] + GENERATION_SLACK, (what, report)
    assert report["edit_inside_face"] > 0.5, (what, "the edit changed nothing", report)


def one_generation(edited, source, *, start: float = 0.0, end: Optional[float] = None, max_frames: Optional[int] = None,
                   fps: float = 0.0, emotion=None, scratch: Path) -> dict:
    """Everything above for ``edited`` = an edit of ``source``'s range (at ``fps``): the report (asserted by the caller)."""
    from fractions import Fraction

    from sserd_core import pipeline

    info = pipeline.load_video(source, start=start or None, end=end, max_frames=max_frames)
    frames = source_frames(info, fps)
    rate = Fraction(fps).limit_denominator(1001) if fps else info.fps
    scratch.mkdir(parents=True, exist_ok=True)
    direct = direct_encode(frames, info.width, info.height, rate, scratch / "direct.mp4")
    keep = untouched_mask(info, frames, emotion, scratch / "raw_edit.mp4")
    return generation_report(edited, direct, frames, keep)

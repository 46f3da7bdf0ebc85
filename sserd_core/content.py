"""The content track: what DisentangleContent produces and RenderFace consumes.

Small (≈ 0.6 kB a frame), so a whole clip's track lives in memory and can be saved to
an ``.npz`` file next to the video, passed between ComfyUI nodes, or cached.
"""

from __future__ import annotations

import functools

import json
import os
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Optional

import numpy as np

from .editor import FaceFrame
from .media import VideoInfo
from .smoothing import moving_average


@dataclass
class ContentTrack:
    """One tracked face through a clip, split into speech content and emotion.

    - ``video``: the clip (path + selected range) the track belongs to.
    - ``times``: ``float32 [N]`` frame times in seconds from the range start.
    - ``landmarks``: ``float32 [N, 68, 2]`` smoothed landmarks, frame pixels; NaN where lost.
    - ``found``: ``bool [N]`` whether the face was visible.
    - ``to_canonical``: ``float32 [N, 2, 3]`` frame px → canonical face space (eye centres
      at (∓0.5, 0); unit = inter-ocular distance).
    - ``canonical``: ``float32 [N, 68, 2]`` the landmarks in canonical space.
    - ``neutral``: ``float32 [68, 2]`` the person's neutral face (canonical).
    - ``content``: ``float32 [N, 2]`` speech content per frame: inner-lip opening and
      mouth width (canonical units) — the part of the expression that is always kept.
    - ``source_emotion``: ``float32 [N, 7]`` the emotion the source shows per frame.
    - ``neutral_features``: ``float32 [9]`` emotion features of the neutral face
      (:func:`sserd_core.expression.emotion_features`), the zero of emotion measurements.
    - ``face_index``: which face was followed (0 = largest).
    - ``feature_coupling`` ``[2, 9]`` / ``content_median`` ``[2]``: how this person's emotion
      features move with speech (least squares over the clip), removed before measuring.
    """

    video: VideoInfo
    times: np.ndarray
    landmarks: np.ndarray
    found: np.ndarray
    to_canonical: np.ndarray
    canonical: np.ndarray
    neutral: np.ndarray
    content: np.ndarray
    source_emotion: np.ndarray
    neutral_features: np.ndarray
    face_index: int = 0
    feature_coupling: Optional[np.ndarray] = None
    content_median: Optional[np.ndarray] = None

    @property
    def n_frames(self) -> int:
        return int(len(self.times))

    def face_frame(self, i: int) -> Optional[FaceFrame]:
        """The tracked face of frame ``i`` for a backend, or None where the face was lost."""
        if i >= len(self.found) or not self.found[i]:
            return None
        return FaceFrame(self.landmarks[i], self.to_canonical[i], self.neutral, self.source_emotion[i],
                         float(self.mouth_envelope[i]))

    @functools.cached_property
    def mouth_envelope(self) -> np.ndarray:
        """``float32 [N]``: the inner-lip opening (canonical units) averaged over ~0.7 s around each frame —
        how far the lips are apart over a few syllables, not within one (NaN where the face is lost)."""
        n = len(self.found)
        out = np.full(n, np.nan, np.float32)
        idx = np.flatnonzero(self.found[:n])
        if len(idx) == 0:
            return out
        fps = float(getattr(self.video, "fps_float", 25.0) or 25.0)
        window = max(1, int(round(0.7 * fps)) | 1)
        out[idx] = moving_average(np.nan_to_num(self.content[idx, 0].astype(np.float64)), window)
        return out

    def coupling(self) -> np.ndarray:
        return np.zeros((2, 9), np.float32) if self.feature_coupling is None else self.feature_coupling

    def median_content(self) -> np.ndarray:
        return np.zeros(2, np.float32) if self.content_median is None else self.content_median

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the track to an ``.npz`` file: every field (arrays, numbers; the video description as JSON).

        Written field by field from the dataclass, so a field added later is saved too (a
        hand-kept list once forgot the speech-coupling fields and a reload silently lost them).
        """
        v = asdict(self.video)
        v["fps"] = [self.video.fps.numerator, self.video.fps.denominator]
        v["time_base"] = [self.video.time_base.numerator, self.video.time_base.denominator]
        arrays = {"video": np.frombuffer(json.dumps(v).encode(), np.uint8)}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "video" or value is None:
                continue
            arrays[f.name] = np.asarray(value)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ContentTrack":
        """Read a track written by :meth:`save` (fields it lacks keep their defaults)."""
        with np.load(path) as z:
            v = json.loads(bytes(z["video"]).decode())
            v["fps"] = Fraction(*v["fps"])
            v["time_base"] = Fraction(*v["time_base"])
            known = {f.name for f in fields(VideoInfo)}
            kwargs = {"video": VideoInfo(**{k: val for k, val in v.items() if k in known})}
            for f in fields(cls):
                if f.name != "video" and f.name in z:
                    a = z[f.name]
                    kwargs[f.name] = a.item() if a.ndim == 0 and f.type in ("int", "float", int, float) else a
        return cls(**kwargs)

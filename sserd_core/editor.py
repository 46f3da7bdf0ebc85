"""The editor interface both backends implement.

A backend turns source frames + their tracked faces + per-frame target emotions into
edited frames. The pipeline owns everything around it (decoding, tracking, content
estimation, encoding, audio), so a backend only does the face edit.

- :class:`sserd_core.landmark.render.LandmarkEditor` — the embedded default: a landmark-driven
  dense warp (no network weights beyond the pip-shipped landmark model).
- the neural SSERD backend (``sserd_core.models``) — encoder → emotion module →
  StyleGAN2 generator, loaded from a converted checkpoint folder or a Hub repo id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .emotion import EmotionSpec
from .errors import SSERDError
from .media.patch import Patch


@dataclass
class FaceFrame:
    """One frame's tracked face, as the pipeline hands it to a backend.

    - ``landmarks``: ``float32 [68, 2]`` source landmarks in frame pixels (smoothed).
    - ``to_canonical``: ``float32 [2, 3]`` similarity transform frame px → canonical
      face space (eye centres at (∓0.5, 0), units of inter-ocular distance).
    - ``neutral``: ``float32 [68, 2]`` the person's neutral face in canonical space.
    - ``source_emotion``: emotion vector ``[7]`` measured on this source frame.
    - ``mouth_open``: inner-lip opening (canonical units) averaged over ~0.7 s around this
      frame (:attr:`sserd_core.content.ContentTrack.mouth_envelope`); None when not known
      (a backend then uses this frame's own landmarks).
    """

    landmarks: np.ndarray
    to_canonical: np.ndarray
    neutral: np.ndarray
    source_emotion: np.ndarray
    mouth_open: Optional[float] = None


class FaceEditor(ABC):
    """Edit the emotion of one face per frame, keeping its speech content (mouth) and identity."""

    #: short name shown in logs / UIs
    name: str = "editor"
    #: how many frames the pipeline hands over per :meth:`edit` call
    batch_size: int = 1
    #: True when ``edit`` may run on several frames at once from several threads (no state carried
    #: from frame to frame); the pipeline then edits frames in parallel
    parallel_safe: bool = False
    #: True when the backend takes expression controls (:mod:`sserd_core.controls`): each target is then the
    #: emotion vector ``[7]`` followed by the controls' values ``[N_CONTROLS]`` (the landmark editor)
    takes_controls: bool = False

    def load_driving_clip(self, path: str, *, sync: str, source_fps: float, source_frames: int,
                          start: Optional[float] = None, end: Optional[float] = None,
                          max_frames: Optional[int] = None) -> Optional[object]:
        """The driving clip at ``path`` (its range [``start``, ``end``) seconds, at most ``max_frames``) made
        ready for :meth:`set_driving_clip`, for a backend that takes the clip's frames themselves as per-frame
        references; ``sync`` / ``source_fps`` / ``source_frames`` say how source frames pick clip frames.

        Default: None — the backend edits from emotion vectors, and the pipeline already hands it the
        clip's per-frame emotion as the targets (the landmark editor)."""
        return None

    def set_driving_clip(self, clip: Optional[object]) -> None:
        """Drive the following edits from ``clip`` (what :meth:`load_driving_clip` returned), or from the
        targets again when None. The pipeline calls this before every job (with None when the job has no
        driving clip, so an editor reused across jobs never keeps an earlier job's clip).

        Default: nothing to do (a backend whose :meth:`load_driving_clip` returns None)."""

    def control_saturation(self, frame: np.ndarray, face: Optional[FaceFrame], target: np.ndarray) -> np.ndarray:
        """The share (0…1) of each expression control's displacement that the bounds let through on this frame's face,
        ``[N_CONTROLS]`` (NaN where not measured): the first of :meth:`control_shares`."""
        return self.control_shares(frame, face, target)[0]

    def control_shares(self, frame: np.ndarray, face: Optional[FaceFrame],
                       target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(shown, reached)`` ``[N_CONTROLS]`` each: the share of each control's motion the bounds let through
        (below 1: it saturates) and the share that moves this face at all (see the landmark editor). Default: not
        measured (NaN)."""
        from .controls import N_CONTROLS

        return np.full(N_CONTROLS, np.nan, np.float32), np.full(N_CONTROLS, np.nan, np.float32)

    def prepare(self, emotion: EmotionSpec) -> None:
        """Called once per job before the first :meth:`edit` (e.g. encode the reference image)."""

    @abstractmethod
    def edit(self, frames: Sequence[np.ndarray], faces: Sequence[Optional[FaceFrame]],
             targets: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Edited frames.

        ``frames``: ``uint8 [H, W, 3]`` RGB source frames; ``faces``: the tracked face of
        each frame or None where it was lost (return that frame unchanged);
        ``targets``: emotion vector ``[7]`` per frame. Returns ``uint8 [H, W, 3]`` frames
        of the same size, identical to the source outside the face region.
        """

    def edit_patches(self, frames: Sequence[np.ndarray], faces: Sequence[Optional[FaceFrame]],
                     targets: Sequence[np.ndarray]) -> list[Patch]:
        """:meth:`edit`, each result told as a :class:`~sserd_core.media.Patch` over its source frame.

        The pipeline calls this one. By default each edited frame is a patch as large as the frame; a
        backend that knows the box it changed returns just that (the encoder then converts only the
        box, and no whole frame is copied)."""
        patches = []
        for f, out in zip(frames, self.edit(frames, faces, targets)):
            if out.shape != f.shape:
                raise SSERDError(f"Backend {self.name} returned a frame of shape {out.shape}, expected {f.shape}.")
            patches.append(Patch.whole(f, out))
        return patches

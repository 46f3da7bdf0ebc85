"""What a render and an edit return."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import os
from typing import Optional, Union

import numpy as np

from ..content import ContentTrack
from ..emotion import EmotionSpec


PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class Outputs:
    """Where one job writes: ``video``, the edited clip, and where given, ``side_by_side`` (source | edited),
    ``previews`` (the folder for :attr:`EditOptions.preview_n` PNG frames) and ``plot`` (the measurements over
    time, PNG/SVG/PDF). A bare path wherever an ``Outputs`` is taken means ``Outputs(video=path)``."""

    video: PathLike
    side_by_side: Optional[PathLike] = None
    previews: Optional[PathLike] = None
    plot: Optional[PathLike] = None

    @classmethod
    def of(cls, out: Union["Outputs", PathLike]) -> "Outputs":
        return out if isinstance(out, Outputs) else cls(out)


@dataclass
class Preview:
    """One preview frame of a render: its index and time in the clip, the edited frame's PNG and the
    source | edited PNG beside it."""

    index: int
    time: float
    edited: Path
    compare: Path


@dataclass
class FaceResult:
    """What a render with several faces measured on one of them (:attr:`RenderResult.faces`): ``face_index``
    (0 = largest), ``target`` ``[N, 7]``, ``source_emotion`` / ``edited_emotion`` ``[N, 7]`` and ``source_mouth`` /
    ``edited_mouth`` ``[N]`` as in :class:`RenderResult` (NaN where that face was not found)."""

    face_index: int
    target: np.ndarray
    source_emotion: np.ndarray
    edited_emotion: np.ndarray
    source_mouth: np.ndarray
    edited_mouth: np.ndarray


@dataclass
class RenderResult:
    """What :func:`render_face` produced and measured.

    ``times`` ``[N]`` seconds; ``target`` ``[N, 7]`` the requested emotion per frame;
    ``source_emotion`` / ``edited_emotion`` ``[N, 7]`` emotion measured on landmarks
    fitted to the source / edited pixels; ``source_mouth`` / ``edited_mouth`` ``[N]``
    inner-lip opening (inter-ocular units) measured the same way; NaN where no face.
    ``previews``: :class:`Preview` frames, in clip order; ``seconds``: the render's wall time. With several
    faces, the arrays above are the first face's and ``faces`` holds one :class:`FaceResult` per face, in the
    order they were edited (empty for one face). ``controls`` ``[N, N_CONTROLS]`` the expression controls asked for per frame, and ``control_shown``
    ``[N_CONTROLS]`` the median share of each control's displacement that reached the face (sampled frames;
    NaN for a control never away from 0); both None without controls. ``notes``: what a user should be told
    about the render (a control that saturates, on any face).
    """

    path: Path
    n_frames: int
    times: np.ndarray
    target: np.ndarray
    source_emotion: np.ndarray
    edited_emotion: np.ndarray
    source_mouth: np.ndarray
    edited_mouth: np.ndarray
    comparison_path: Optional[Path] = None
    previews: list[Preview] = field(default_factory=list)
    seconds: float = 0.0
    faces: tuple = ()
    controls: Optional[np.ndarray] = None
    control_shown: Optional[np.ndarray] = None
    notes: list = field(default_factory=list)


def preview_indices(n_frames: int, preview_n: int) -> list:
    """The frames a render saves as previews: ``preview_n`` evenly spaced over ``n_frames``, first and last included."""
    if not n_frames or not preview_n or preview_n <= 0:
        return []
    return sorted(set(np.linspace(0, n_frames - 1, min(preview_n, n_frames)).round().astype(int).tolist()))


def preview_names(n_frames: int, preview_n: int) -> list:
    """The file names of the previews of a render (:func:`preview_indices`): the edited frame and source | edited."""
    return [name for i in preview_indices(n_frames, preview_n)
            for name in (f"frame_{i:05d}.png", f"frame_{i:05d}_compare.png")]


@dataclass
class EditResult:
    """The result of :func:`edit_video`: the output file, what was measured, and timings. With a target per
    face, ``content`` and ``emotion`` are the first face's and ``faces`` holds every face's
    :class:`~sserd_core.pipeline.faces.FaceEdit` (track and target), in the order they were edited."""

    output: Path
    content: ContentTrack
    emotion: EmotionSpec
    render: RenderResult
    comparison: Optional[Path]
    has_audio: bool
    seconds: float
    faces: tuple = ()

"""One frame of an edit, at once: what a form shows while its sliders move, before the whole clip renders."""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import numpy as np

from .. import media
from ..content import ContentTrack
from ..controls import CONTROL_NAMES, saturation_note
from ..editor import FaceEditor
from ..errors import SSERDError
from .backends import default_editor
from .render import frame_targets
from .stages import as_emotion


@dataclasses.dataclass
class FramePreview:
    """One edited frame: its ``index`` and ``time`` in the clip, the ``source`` and ``edited`` RGB, the share of
    each expression control's motion shown (``control_shown`` ``[N_CONTROLS]``, NaN for a control at 0; None
    without controls), the ``note`` a user should read (a control that saturates; ``""``) and the ``seconds`` the
    edit took (decoding excluded)."""

    index: int
    time: float
    source: np.ndarray
    edited: np.ndarray
    control_shown: Optional[np.ndarray]
    note: str
    seconds: float

    def side_by_side(self) -> np.ndarray:
        """source | edited, one image."""
        return np.concatenate([self.source, self.edited], axis=1)

    def shown_text(self) -> str:
        """``"smile 100%, brow_inner 62%"`` for the controls away from 0 (``""`` without)."""
        if self.control_shown is None:
            return ""
        return ", ".join(f"{n} {100 * x:.0f}%" for n, x in zip(CONTROL_NAMES, self.control_shown) if x == x)


def frame_at(content: ContentTrack, index: int) -> np.ndarray:
    """Frame ``index`` of the clip ``content`` was tracked on (upright RGB), decoded from the start of its range."""
    for fr in media.iter_frames(content.video, max_frames=index + 1):
        if fr.index >= index:
            return fr.rgb
    raise SSERDError(f"Frame {index} of {content.video.path} could not be decoded.")


def preview_frame(content: ContentTrack, emotion, index: Optional[int] = None, *, editor: Optional[FaceEditor] = None,
                  frame: Optional[np.ndarray] = None) -> FramePreview:
    """Frame ``index`` (default: the middle frame where the face is tracked) of ``content`` edited to ``emotion``
    (an :class:`~sserd_core.emotion.EmotionSpec` or a label) by ``editor`` (default: the landmark editor), exactly
    as the whole render edits it. ``frame``: that frame's RGB when the caller holds it (a form that previews
    many settings on one frame decodes it once)."""
    emotion = as_emotion(emotion)
    editor = editor or default_editor()
    n = content.n_frames
    if index is None:
        found = np.flatnonzero(content.found[:n])
        index = int(found[len(found) // 2]) if len(found) else n // 2
    if not 0 <= int(index) < n:
        raise SSERDError(f"Frame {index} is outside the clip (frames 0..{n - 1}).")
    index = int(index)
    rgb = frame if frame is not None else frame_at(content, index)
    targets, controls, edit_targets = frame_targets(content, emotion, editor, np.array([index]))
    face = content.face_frame(index)
    editor.set_driving_clip(None)
    editor.prepare(emotion)
    t0 = time.perf_counter()
    edited = editor.edit([rgb], [face], [edit_targets[0]])[0]
    shown, note = None, ""
    if controls is not None:
        shown, reached = editor.control_shares(rgb, face, edit_targets[0])
        note = saturation_note(controls, shown, reached)
    return FramePreview(index, float(content.times[index]), rgb, edited, shown, note, time.perf_counter() - t0)

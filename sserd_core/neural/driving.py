"""A reference clip as a per-frame emotion source for the neural backend (the paper's protocol)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np
import torch

from ..emotion import SYNC_MODES, check_sync
from ..errors import SSERDError

if TYPE_CHECKING:
    from .editor import NeuralEditor



#: how source frame i picks its driving frame (see :class:`DrivingClip`)
DRIVING_SYNC = SYNC_MODES


class DrivingClip:
    """A reference clip as a per-frame emotion source: source frame *i* is driven by one frame of the clip.

    This is the paper's protocol — every source frame gets a reference frame: cross-ID, the frames of another
    actor's clip of the target emotion; intra-ID, the source clip itself. Build one with
    :meth:`NeuralEditor.encode_driving_clip` (frames in memory) or :func:`load_driving_clip` (a video file).

    - ``codes``: reference codes ``[N, n_styles, d]``, one per clip frame (a frame without a face holds the
      nearest frame's code with a face; ``has_face`` ``bool [N]`` says which had one).
    - ``times``: ``float64 [N]`` seconds of each clip frame from its start; ``period``: the clip's length in s.
    - ``sync`` (:data:`~sserd_core.emotion.SYNC_MODES`; default ``"time"``) — how source frame *i* (at time *t*) picks clip frame *k*:
      ``"index"``: ``k = i mod N`` (index-synchronised, looping when the clip is shorter — the paper's cross-ID
      setting with clips of equal length); ``"time"``: the clip frame shown at ``t mod period``
      (time-aligned across frame rates, looping); ``"stretch"``: ``k = floor(i · N / source_frames)``, the whole
      clip spread over the whole source (what the official test set ``MEADTestDataset`` does).
    - ``source_fps``: the source's frame rate, for ``"time"`` when :meth:`codes_for` gets no times;
      ``source_frames``: the source's frame count, needed by ``"stretch"``.
    """

    def __init__(self, codes: torch.Tensor, times: Sequence[float], has_face: Sequence[bool], sync: str = SYNC_MODES[0],
                 source_fps: Optional[float] = None, source_frames: Optional[int] = None):
        check_sync(sync)
        if sync == "stretch" and not source_frames:
            raise SSERDError("A driving clip with sync='stretch' needs source_frames (the source clip's frame count).")
        self.codes = codes
        self.times = np.asarray(times, np.float64)
        self.has_face = np.asarray(has_face, bool)
        if len(self.times) != len(codes) or len(self.has_face) != len(codes) or not len(codes):
            raise SSERDError("A driving clip needs one time and one face flag per frame, and at least one frame.")
        step = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 1.0 / (source_fps or 25.0)
        self.period = float(self.times[-1] - self.times[0]) + step
        self.sync, self.source_fps, self.source_frames = sync, source_fps, source_frames

    def __len__(self) -> int:
        return len(self.codes)

    def index_for(self, frame_index: int, time: Optional[float] = None) -> int:
        """The clip frame that drives source frame ``frame_index`` (at ``time`` s from the source's start)."""
        n = len(self.codes)
        if self.sync == "index":
            return int(frame_index) % n
        if self.sync == "stretch":
            return min(int(frame_index * n / self.source_frames), n - 1)
        if time is None:
            if not self.source_fps:
                raise SSERDError("A driving clip with sync='time' needs the source times or source_fps.")
            time = frame_index / self.source_fps
        t = self.times[0] + float(time) % self.period
        return int(np.clip(np.searchsorted(self.times, t + 1e-9, side="right") - 1, 0, n - 1))

    def codes_for(self, frame_indices: Sequence[int], times: Optional[Sequence[float]] = None) -> torch.Tensor:
        """Reference codes ``[B, n_styles, d]`` for source frames ``frame_indices`` (at ``times``, if given)."""
        ks = [self.index_for(i, None if times is None else times[j]) for j, i in enumerate(frame_indices)]
        return self.codes[torch.as_tensor(ks, dtype=torch.long, device=self.codes.device)]


def load_driving_clip(editor: "NeuralEditor", path: Union[str, os.PathLike], sync: str = SYNC_MODES[0],
                      source_fps: Optional[float] = None, source_frames: Optional[int] = None,
                      start: Optional[float] = None, end: Optional[float] = None,
                      max_frames: Optional[int] = None) -> DrivingClip:
    """Decode the video at ``path`` (``start``/``end`` s, at most ``max_frames``) and encode it with ``editor``
    (:meth:`NeuralEditor.encode_driving_clip`); streams the frames, keeps only their codes."""
    from ..media import iter_frames, probe_video

    info = probe_video(path, start=start, end=end, max_frames=max_frames)
    frames = iter_frames(info, max_frames=max_frames)
    times: list[float] = []

    def rgb_and_time():
        for fr in frames:
            times.append(float(fr.time))
            yield fr.rgb

    return editor.encode_driving_clip(rgb_and_time(), times=times, fps=info.fps_float, sync=sync,
                                      source_fps=source_fps, source_frames=source_frames)



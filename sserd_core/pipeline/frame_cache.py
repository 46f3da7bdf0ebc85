"""The frame cache: the last frames the tracking pass decoded, kept for the render pass (which then
need not decode them again)."""

from __future__ import annotations

import collections
import dataclasses
from typing import Optional

from .. import media


#: decoded frames the tracking pass keeps for the render pass (the clip's last ones), in bytes
FRAME_TAIL_BYTES = 128 * 2**20


class FrameTail:
    """The last decoded frames of a pass, up to ``limit`` bytes (the render pass takes them instead
    of decoding them a second time: all of a short clip, the end of a long one; memory stays
    bounded whatever the clip's length). A frame with planes is kept as its planes only (a third of
    its RGB and planes together): its RGB is made again from them, bit for bit, when handed on."""

    def __init__(self, limit: Optional[int] = None):
        self.limit = FRAME_TAIL_BYTES if limit is None else limit
        self.frames: collections.deque = collections.deque()
        self.bytes = 0

    def add(self, frame: media.Frame) -> None:
        if self.frames and frame.index != self.frames[-1].index + 1:  # not a run of frames: start again
            self.clear()
        kept = frame if frame.planes is None else CompactFrame(frame.index, frame.time, frame.planes)
        self.frames.append(kept)
        self.bytes += kept.nbytes
        while self.bytes > self.limit and self.frames:
            self.bytes -= self.frames.popleft().nbytes

    def clear(self) -> None:
        self.frames.clear()
        self.bytes = 0


@dataclasses.dataclass(frozen=True)
class CompactFrame:
    """A kept frame without its RGB (see :class:`FrameTail`)."""

    index: int
    time: float
    planes: media.Planes

    @property
    def nbytes(self) -> int:
        return self.planes.yuv.nbytes

    def frame(self) -> media.Frame:
        return media.Frame(self.index, self.time, self.planes.to_rgb(), self.planes)


def frames_of(video: media.VideoInfo, n: int, tail: Optional[FrameTail]):
    """Frames 0..n-1 of ``video``: decoded up to the first frame ``tail`` holds, then taken from it
    (the same frames: the same decoder over the same file). Without a usable tail: all decoded."""
    kept = tail.frames if tail is not None else ()
    if not kept or kept[-1].index < n - 1 or kept[0].index >= n:
        yield from media.iter_frames(video, max_frames=n, planes=True)
        return
    if kept[0].index > 0:
        yield from media.iter_frames(video, max_frames=kept[0].index, planes=True)
    while kept and kept[0].index < n:
        f = kept.popleft()  # handed on, no longer held here
        yield f.frame() if isinstance(f, CompactFrame) else f
    tail.clear()

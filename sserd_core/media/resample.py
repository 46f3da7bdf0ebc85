"""A video at another frame rate, without a lossy generation: frames dropped or repeated, bit-exact.

Used where an edit must run at a frame rate the source does not have (ComfyUI's Load Video
``force_fps``): the frames go to a lossless intermediate, and the edit is still encoded once
from the decoded source's pixels.
"""

from __future__ import annotations

import itertools
import os
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional, Union

import av

from .read import VideoInfo, iter_frames
from .write import VideoWriter

Progress = Optional[Callable[[str, int, int], None]]


def resample_video(info: VideoInfo, rate: Fraction, out: Union[str, os.PathLike], progress: Progress = None) -> float:
    """Write ``info``'s frames at ``rate`` to ``out`` losslessly; the written duration in seconds.

    For each output time ``k / rate`` the source frame shown at that moment is kept (frames are
    dropped or repeated, never blended). A clip the decoder gives as 8-bit 4:2:0 (almost every
    camera and phone file) is written as lossless 4:2:0 from the decoder's own planes, tagged with
    the source's colour matrix, range, primaries and transfer: read back, its planes are the
    source's bit for bit, so the edit downstream takes the same planes path as on the source (no
    RGB round trip, no BT.601/BT.709 mix-up). Any other clip is written as lossless RGB
    (``libx264rgb``), the decoded RGB bit for bit. On an error the partial file is removed.
    """
    out = Path(out)
    rate = Fraction(rate)
    frames = iter_frames(info, planes=True)
    first = next(frames, None)
    k, t_end = 0, 0.0
    try:
        if first is not None and first.planes is not None:
            sink = VideoWriter(str(out), info.width, info.height, rate, preset="ultrafast", lossless=True)
            put = lambda fr, k: sink.write(fr.rgb, k / rate, source=fr)  # noqa: E731
        else:
            sink = _RgbLossless(out, info.width, info.height, rate)
            put = lambda fr, k: sink.write(fr.rgb, k)  # noqa: E731
        with sink:
            held = None
            for fr in itertools.chain([first] if first is not None else [], frames):
                while held is not None and k / rate < fr.time - 1e-6:
                    put(held, k)
                    k += 1
                held = fr
                t_end = fr.time + 1.0 / info.fps_float
                if progress is not None:
                    progress("resampling", fr.index + 1, info.n_frames)
            while held is not None and k / rate < t_end - 1e-6:
                put(held, k)
                k += 1
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return float(k / rate)


class _RgbLossless:
    """RGB frames to lossless H.264 RGB (``libx264rgb``, qp 0) at a constant ``rate``."""

    def __init__(self, out: Path, width: int, height: int, rate: Fraction):
        self.tb = Fraction(1, 90000)
        self.rate = rate
        self.container = av.open(str(out), mode="w")
        self.stream = self.container.add_stream("libx264rgb", rate=rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "rgb24"
        self.stream.codec_context.time_base = self.tb
        self.stream.options = {"qp": "0", "preset": "ultrafast"}

    def write(self, rgb, k: int) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = int(round(k / self.rate / self.tb)), self.tb
        for pkt in self.stream.encode(frame):
            self.container.mux(pkt)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                for pkt in self.stream.encode():
                    self.container.mux(pkt)
        finally:
            self.container.close()

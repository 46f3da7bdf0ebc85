"""Writing video and images: staged outputs that appear only when complete, and an encoder that
keeps each frame's timestamp (optionally on a background thread)."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np

from ..errors import SSERDError
from .threads import worker_thread_signals

_VIDEO_CODEC = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}

SUPPORTED_OUTPUTS = tuple(_VIDEO_CODEC)


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(rgb).save(str(path))


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, inputs: tuple = ()) -> Iterator[str]:
    """Yield a temporary path (in a unique ``*.sserd-partial`` staging folder beside ``path``);
    it appears as ``path`` only if the block succeeds (see :class:`sserd_core.outputs.OutputSet`).

    Refuses to overwrite any of ``inputs``. On any exception (including
    KeyboardInterrupt and a cancelled job) the temporary file is deleted.
    """
    from ..outputs import OutputSet

    if Path(path).suffix.lower() not in _VIDEO_CODEC:
        raise SSERDError(f"Output must end in one of {', '.join(SUPPORTED_OUTPUTS)}; got '{Path(path).name}'.")
    with OutputSet(inputs=inputs) as outs:
        yield str(outs.file(path))


class VideoWriter:
    """Encode RGB frames to a video file, keeping each frame's timestamp.

    H.264 (libx264, ``yuv420p``) for MP4/MOV/MKV, VP9 for WebM. Odd frame sizes can't be
    stored as 4:2:0, so they are encoded as ``yuv444p`` at the exact size instead of
    being cropped or padded.
    """

    def __init__(self, path: str, width: int, height: int, fps: Fraction, crf: int = 18, preset: str = "veryfast",
                 threaded: bool = False):
        ext = Path(path).suffix.lower()  # atomic_output's temporary names keep the real suffix
        self.path = path
        self.container = av.open(path, mode="w")
        self.stream = self.container.add_stream(_VIDEO_CODEC.get(ext, "libx264"), rate=Fraction(fps).limit_denominator(100000))
        self.stream.width = width
        self.stream.height = height
        self.stream.pix_fmt = "yuv444p" if (width % 2 or height % 2) else "yuv420p"
        self.time_base = Fraction(1, 90000)
        self.stream.codec_context.time_base = self.time_base
        self.stream.time_base = self.time_base
        opts = {"crf": str(crf)}
        if self.stream.codec_context.name == "libx264":
            opts["preset"] = preset
            # x264 picks CPU-specific code paths; on AVX-512 CPUs the bundled libx264 (core 165) then
            # writes a different bitstream for the same frames from run to run (seen at 448x448:
            # 3 distinct files in 8 runs). cpu-independent=1 is x264's switch for reproducible output
            # (about 20% more encoder time, on the encoder thread); tests/test_parallel_render.py
            # checks the result.
            opts["x264-params"] = "cpu-independent=1"
        else:
            opts["b"] = "0"
            opts["deadline"] = "realtime"
            opts["cpu-used"] = "8"
        self.stream.options = opts
        self._last_pts = -1
        self._queue: Optional[queue.Queue] = None
        self._error: Optional[BaseException] = None
        if threaded:  # encode in a background thread (FFmpeg releases the GIL), 8 frames of slack
            self._queue = queue.Queue(maxsize=8)
            self._thread = threading.Thread(target=self._run, name="sserd-encode", daemon=True)
            self._thread.start()

    def _run(self):
        worker_thread_signals()
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._encode(*item)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                    self._error = exc

    def write(self, rgb: np.ndarray, time: float) -> None:
        """Queue/encode one ``uint8 [H, W, 3]`` RGB frame shown at ``time`` seconds."""
        if self._queue is not None:
            if self._error is not None:
                raise self._error
            self._queue.put((rgb, time))
        else:
            self._encode(rgb, time)

    def _stop_thread(self):
        if self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None

    def _encode(self, rgb: np.ndarray, time: float) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        pts = int(round(time / self.time_base))
        if pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        self._stop_thread()
        if self._error is not None:
            raise self._error
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            with contextlib.suppress(BaseException):
                self._stop_thread()
            with contextlib.suppress(Exception):
                self.container.close()



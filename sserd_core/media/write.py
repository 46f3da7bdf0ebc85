"""Writing video and images: staged outputs that appear only when complete, and an encoder that
keeps each frame's timestamp (optionally on a background thread)."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np

from ..errors import SSERDError
from .patch import Patch
from .read import Frame, Planes
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

    A frame written with its ``source`` (the decoded :class:`~sserd_core.media.Frame` it was made
    from, holding the decoder's :class:`~sserd_core.media.Planes`) is encoded from those planes:
    the pixels that differ from ``source.rgb`` are converted back with the matrix and range the
    decoder used, every other pixel is written exactly as decoded, and the stream carries the
    source's colour tags. That is one encode generation in the strict sense (no RGB round trip
    outside the edit, which costs about one grey level, and for a BT.709 clip shifts the colours
    when converted back with BT.601), and it skips the whole-frame RGB → YUV conversion (~3 ms a
    720p frame) for a conversion of the changed box only.
    """

    def __init__(self, path: str, width: int, height: int, fps: Fraction, crf: int = 18, preset: str = "veryfast",
                 threaded: bool = False, lossless: bool = False):
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
        # lossless: x264's qp 0 (every sample it is given comes back exactly), VP9's lossless mode
        opts = {"qp": "0"} if lossless else {"crf": str(crf)}
        if self.stream.codec_context.name == "libx264":
            opts["preset"] = preset
            # x264 picks CPU-specific code paths; on AVX-512 CPUs the bundled libx264 (core 165) then
            # writes a different bitstream for the same frames from run to run (seen at 448x448:
            # 3 distinct files in 8 runs). cpu-independent=1 is x264's switch for reproducible output
            # (about 20% more encoder time, on the encoder thread); tests/test_parallel_render.py
            # checks the result.
            opts["x264-params"] = "cpu-independent=1"
        else:
            opts = {"lossless": "1"} if lossless else opts
            opts["b"] = "0"
            opts["deadline"] = "realtime"
            opts["cpu-used"] = "8"
        self.stream.options = opts
        self.width, self.height = width, height
        self._tags: Optional[tuple] = None  # the colour tags of the planes written, fixed by the first frame
        self._tags_lock = threading.Lock()
        self._last_pts = -1
        self._queue: Optional[queue.Queue] = None
        self._error: Optional[BaseException] = None
        self._abandon = False  # set when the job failed: queued frames are dropped, not encoded
        self._closing = False  # set once every frame is queued: the thread ends when the queue is empty
        if threaded:  # encode in a background thread (FFmpeg releases the GIL), 8 frames of slack
            self._queue = queue.Queue(maxsize=8)
            self._thread = threading.Thread(target=self._run, name="sserd-encode", daemon=True)
            self._thread.start()

    def _run(self):
        worker_thread_signals()
        while True:
            # never a wait without end: a stop signal raised in the main thread inside the queue's put (e.g.
            # between the lock's release and the try/finally of Condition.wait) can lose a wake-up, and the
            # thread would sleep beside a queued end while the job joins it; a poll finds it at the next tick
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._closing:
                    return
                continue
            if item is None:
                return
            if self._error is None and not self._abandon:
                try:
                    self._encode(*item)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                    self._error = exc

    def write(self, image, time: float, source: Optional[Frame] = None) -> None:
        """Queue/encode one frame shown at ``time`` seconds: a ``uint8 [H, W, 3]`` RGB array, a
        :class:`~sserd_core.media.Patch` over a frame, or what :meth:`prepare` made of either.

        ``source``: the decoded frame the image was made from; its planes, where it has them, carry
        every pixel the edit left alone (see the class docstring)."""
        if self._queue is not None and self._error is not None:
            raise self._error
        item = (image.pixels if isinstance(image, Prepared) else self._input(image, source), time)
        if self._queue is not None:
            self._queue.put(item)
        else:
            self._encode(*item)

    def prepare(self, image, source: Optional[Frame] = None) -> "Prepared":
        """What :meth:`write` would hand the encoder for ``image`` (with ``source``), made now, on the calling
        thread: frame workers convert their edits in parallel, and :meth:`write` only queues the result.
        Thread-safe, in any frame order."""
        return Prepared(self._input(image, source))

    def _input(self, image, source: Optional[Frame]) -> np.ndarray:
        """What the encoder takes for this frame: the source's planes with the edit patched in, or RGB."""
        patch = image if isinstance(image, Patch) else None
        shape = (patch.frame if patch is not None else image).shape
        planes = source.planes if source is not None else None
        usable = (planes is not None and self.stream.pix_fmt == "yuv420p" and source.rgb.shape == shape
                  and shape == (self.height, self.width, 3))
        with self._tags_lock:
            if self._tags is None:  # the first frame decides, before the codec opens: planes (tagged as the source) or RGB
                self._tags = planes.tags if usable else ()
                if usable:
                    cc = self.stream.codec_context
                    cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = planes.tags
        if usable and planes.tags == self._tags:
            if patch is None or patch.frame is not source.rgb:
                patch = Patch.whole(source.rgb, patch.apply() if patch is not None else image)
            return patched_planes(planes, patch)
        rgb = patch.apply() if patch is not None else image
        if not self._tags:
            return rgb
        # a frame without (matching) planes in a stream of planes: the whole frame, in the stream's matrix
        return rgb_to_yuv420(np.ascontiguousarray(rgb), self._tags[0], self._tags[1])

    def _stop_thread(self):
        if self._queue is not None:
            self._closing = True
            while self._thread.is_alive():  # the end marker, without waiting for ever on a full queue
                try:
                    self._queue.put(None, timeout=0.1)
                    break
                except queue.Full:
                    continue
            self._thread.join()
            self._queue = None

    def _encode(self, pixels: np.ndarray, time: float) -> None:
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24" if pixels.ndim == 3 else "yuv420p")
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
            # the job failed: drop the queued frames, and close the codec only once the encoder thread has
            # stopped using it (closing it under the thread is a use-after-free in FFmpeg)
            self._abandon = True
            self._stop_thread()
            with contextlib.suppress(Exception):
                self.container.close()


@dataclass(frozen=True)
class Prepared:
    """A frame made ready for the encoder by :meth:`VideoWriter.prepare` (``pixels``: planes or RGB)."""

    pixels: np.ndarray


#: Kr, Kb of the colour matrices :func:`rgb_to_yuv420` computes itself, by FFmpeg's ``AVColorSpace`` number
#: (unspecified is read as BT.601, as swscale does); others go to swscale
_KR_KB = {1: (0.2126, 0.0722), 2: (0.299, 0.114), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114),
          7: (0.212, 0.087), 9: (0.2627, 0.0593)}


def rgb_to_yuv420(rgb: np.ndarray, colorspace: int, color_range: int) -> np.ndarray:
    """``uint8 [h, w, 3]`` RGB (even ``h``, ``w``) → ``yuv420p`` as PyAV lays it out (``[h * 3 / 2, w]``), in
    the matrix ``colorspace`` and ``color_range`` (FFmpeg's numbers).

    Limited range in a standard matrix (BT.601/709/2020, FCC, SMPTE 240M): the matrix itself, by OpenCV
    (``cv2.transform``; chroma from the 2 x 2 mean of RGB), 0.5 ms for a 600 x 460 box where swscale takes
    ~8 ms; it matches swscale to within one level of luma and a few of chroma (tests/test_media.py).
    Anything else: swscale."""
    import cv2

    h, w = rgb.shape[:2]
    kr_kb = _KR_KB.get(int(colorspace))
    if kr_kb is None or color_range not in (0, 1):
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
            format="yuv420p", dst_colorspace=colorspace, dst_color_range=color_range or 1).to_ndarray()
    kr, kb = kr_kb
    kg = 1.0 - kr - kb
    ys, cs = 219.0 / 255.0, 224.0 / 255.0
    to_y = np.array([[kr * ys, kg * ys, kb * ys, 16.0]], np.float32)
    to_uv = np.array([[-kr / (2 * (1 - kb)) * cs, -kg / (2 * (1 - kb)) * cs, 0.5 * cs, 128.0],
                      [0.5 * cs, -kg / (2 * (1 - kr)) * cs, -kb / (2 * (1 - kr)) * cs, 128.0]], np.float32)
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = cv2.transform(rgb, to_y)
    uv = cv2.transform(cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA), to_uv)
    flat = out.reshape(-1)
    m = (h // 2) * (w // 2)
    flat[h * w:h * w + m] = uv[..., 0].ravel()
    flat[h * w + m:] = uv[..., 1].ravel()
    return out


def patched_planes(planes: Planes, patch: Patch) -> np.ndarray:
    """``planes.yuv`` (decoded from ``patch.frame``) with the pixels the patch changes replaced by the
    patch's, converted with the matrix and range the planes are in (:func:`rgb_to_yuv420`).

    Only the changed pixels' box (even-aligned) is converted; inside it a luma sample is replaced where
    its pixel changed and a chroma sample where any of its 2 x 2 pixels did. Every other sample is the
    decoder's own. Returns ``planes.yuv`` itself when nothing changed, a new array otherwise."""
    import cv2

    if patch.pixels is None:
        return planes.yuv
    frame = patch.frame
    H, W = frame.shape[:2]
    px0, py0, px1, py1 = patch.box
    d = cv2.absdiff(patch.pixels, frame[py0:py1, px0:px1])
    moved = d[..., 0] | d[..., 1] | d[..., 2]  # [ph, pw], non-zero where the pixel changed
    rows = np.flatnonzero(cv2.reduce(moved, 1, cv2.REDUCE_MAX).ravel())
    if not len(rows):
        return planes.yuv
    bx, _, bw, _ = cv2.boundingRect(moved[rows[0]:rows[-1] + 1])
    # the changed pixels' box in the frame, widened to even rows and columns (4:2:0 pairs them)
    y0, y1 = (py0 + rows[0]) & ~1, min(H, (py0 + rows[-1] + 2) & ~1)
    x0, x1 = (px0 + bx) & ~1, min(W, (px0 + bx + bw + 1) & ~1)
    h, w = y1 - y0, x1 - x0
    # the box: the frame, with the patch's pixels where it has them; which of them changed
    box = frame[y0:y1, x0:x1].copy()
    changed = np.zeros((h, w), np.uint8)
    iy, ix = np.s_[max(py0, y0) - y0:min(py1, y1) - y0], np.s_[max(px0, x0) - x0:min(px1, x1) - x0]
    jy, jx = np.s_[max(py0, y0) - py0:min(py1, y1) - py0], np.s_[max(px0, x0) - px0:min(px1, x1) - px0]
    box[iy, ix] = patch.pixels[jy, jx]
    changed[iy, ix] = moved[jy, jx]
    new = rgb_to_yuv420(box, planes.colorspace, planes.color_range)
    out = planes.yuv.copy()
    np.copyto(out[:H, x0:x1][y0:y1], new[:h], where=changed > 0)
    # a chroma sample is replaced where any of its 2 x 2 pixels changed (INTER_AREA: their mean > 0)
    c_changed = cv2.resize(changed, (w // 2, h // 2), interpolation=cv2.INTER_AREA) > 0
    flat, box_flat = out.reshape(-1), new.reshape(-1)
    n, m = (H // 2) * (W // 2), (h // 2) * (w // 2)
    for k in (0, 1):  # U then V, each [H/2, W/2] (the box's [h/2, w/2]), stored one after the other after Y
        plane = flat[H * W + k * n:H * W + (k + 1) * n].reshape(H // 2, W // 2)
        sub = box_flat[h * w + k * m:h * w + (k + 1) * m].reshape(h // 2, w // 2)
        np.copyto(plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2], sub, where=c_changed)
    return out

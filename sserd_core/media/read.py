"""Reading video and images: probe (rotation, range, frame count), decode frame by frame (upright
RGB ``uint8 [H, W, 3]``, timestamps kept), still pictures."""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np

from ..errors import MediaError, SSERDError


@dataclass
class VideoInfo:
    """What a video file holds, as a player would show it.

    ``width``/``height`` are the displayed size (after rotation metadata is applied);
    ``fps`` is the average frame rate; ``n_frames`` counts the frames in the selected
    range [``start``, ``end``) seconds.
    """

    path: str
    width: int
    height: int
    fps: Fraction
    n_frames: int
    duration: float
    rotation: int = 0
    start: float = 0.0
    end: Optional[float] = None
    has_audio: bool = False
    audio_codec: Optional[str] = None
    audio_sample_rate: Optional[int] = None
    audio_channels: Optional[int] = None
    video_codec: str = ""
    time_base: Fraction = field(default_factory=lambda: Fraction(1, 90000))
    #: frames the container's index declares for the whole file (0 = not stated); more than the
    #: frames that can be read means the file is truncated
    declared_frames: int = 0

    @property
    def fps_float(self) -> float:
        return float(self.fps)


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"Input file not found: {p}. Check the path.")
    if p.is_dir():
        raise MediaError(f"Input is a folder, not a video file: {p}.")
    try:
        return av.open(str(p), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        _no_resources(exc, p)
        raise MediaError(f"Cannot read {p.name} as a video ({_short(exc)}). Give an MP4/MOV/MKV/WebM file.") from exc


def _no_resources(exc: BaseException, path) -> None:
    """Raise the one-line memory error when FFmpeg failed for want of memory or threads (ENOMEM; EAGAIN when a
    decoder cannot start its threads, e.g. under ``ulimit -v``), not because the file is damaged."""
    import errno

    from ..validate import memory_message

    if isinstance(exc, MemoryError) or getattr(exc, "errno", None) in (errno.ENOMEM, errno.EAGAIN):
        raise SSERDError(memory_message(f"while opening {Path(path).name}")) from exc


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:160]


def _rotation_of(stream, first_frame=None) -> int:
    """Clockwise degrees (0/90/180/270) a player rotates this stream's frames by.

    PyAV's ``VideoFrame.rotation`` is the display matrix's counter-clockwise angle (what
    ffprobe prints as ``rotation``); the legacy ``rotate`` tag is clockwise. The result
    matches what ffmpeg's own auto-rotation shows (tests/test_media.py compares the two).
    """
    ccw = None
    if first_frame is not None:
        with contextlib.suppress(Exception):
            ccw = first_frame.rotation
    if not ccw:
        with contextlib.suppress(Exception):
            ccw = -int(float(stream.metadata.get("rotate", 0)))
    ccw = int(round((ccw or 0) / 90.0)) * 90
    return (-ccw) % 360


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(rgb, k=-1))
    if rotation == 180:
        return np.ascontiguousarray(rgb[::-1, ::-1])
    if rotation == 270:
        return np.ascontiguousarray(np.rot90(rgb, k=1))
    return rgb


def probe_video(path: str | os.PathLike, start: Optional[float] = None, end: Optional[float] = None,
                max_frames: Optional[int] = None) -> VideoInfo:
    """Open ``path``, check it is a decodable video with at least one frame in range, and describe it.

    Counts the frames of the selected range by demuxing packets (no decoding beyond the
    first frame), so it is fast even on long clips.
    """
    start = float(start or 0.0)
    if start < 0:
        raise SSERDError(f"The start time must be >= 0 seconds, got {start}.")
    if end is not None and end <= start:
        raise SSERDError(f"The end time ({end} s) must be after the start time ({start} s).")
    with _open(path) as c:
        if not c.streams:
            raise MediaError(f"{Path(path).name} holds no video frames (no streams at all: an empty or unfinished "
                             "recording?). Give a video with frames.")
        if not c.streams.video:
            raise MediaError(f"{Path(path).name} has no video stream. Give a video file, not audio or an image.")
        vs = c.streams.video[0]
        tb = vs.time_base or Fraction(1, 90000)
        first = None
        try:
            for frame in c.decode(vs):
                first = frame
                break
        except av.error.FFmpegError as exc:
            _no_resources(exc, path)
            raise MediaError(f"{Path(path).name} is corrupt or truncated: no frame could be decoded ({_short(exc)}).") from exc
        if first is None:
            raise MediaError(f"{Path(path).name} contains no video frames.")
        rotation = _rotation_of(vs, first)
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
        fps = vs.average_rate or vs.guessed_rate or Fraction(25)
        audio = c.streams.audio[0] if c.streams.audio else None
        info = VideoInfo(
            path=str(path), width=w, height=h, fps=Fraction(fps), n_frames=0, duration=0.0, rotation=rotation,
            start=start, end=end, has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
            video_codec=vs.codec_context.name, time_base=Fraction(tb), declared_frames=int(vs.frames or 0),
        )
    # count frames in range from packet timestamps (decode order: with B-frames, the first N packets
    # are not the first N frames shown, so a cap reads a little further and keeps the N earliest)
    times: list = []
    beyond_end = False
    reorder_slack = 32
    try:
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            t0 = vs.start_time or 0
            for pkt in c.demux(vs):
                if pkt.size == 0 or pkt.pts is None:
                    continue
                t = float((pkt.pts - t0) * vs.time_base)
                if end is not None and t >= end - 1e-6:
                    beyond_end = True
                    continue
                if t < start - 1e-6:
                    continue
                times.append(t)
                if max_frames and len(times) >= max_frames + reorder_slack:
                    break
    except av.error.FFmpegError:
        pass  # truncated tail: count what was readable
    if not times:
        raise MediaError(f"{Path(path).name} has no video frames between {start:g}s and {end if end is not None else 'the end'}.")
    capped = bool(max_frames) and len(times) >= max_frames
    times = sorted(times)[:max_frames] if max_frames else times
    n = len(times)
    if capped:
        info.declared_frames = 0  # a deliberate cap, not a truncated file
    if end is not None and not beyond_end and not capped:
        info.end = None  # the clip ends before `end`: nothing is cut at the end (audio can be stream-copied)
    info.n_frames = n
    info.duration = (max(times) - min(times)) + 1.0 / float(info.fps)
    return info


@dataclass(frozen=True)
class Planes:
    """A decoded frame as the decoder gave it, before any colour conversion: 8-bit 4:2:0 in the
    video's own range and matrix (``yuv``: ``uint8 [H * 3 / 2, W]``, the Y rows, then U and V, each
    ``[H / 2, W / 2]`` packed two rows to a line, as PyAV lays out ``yuv420p``), with the FFmpeg colour
    tags (``AVColorSpace``, ``AVColorRange``, primaries, transfer) that say how to read it.

    An encoder that takes these planes for the pixels an edit did not change writes them exactly as
    decoded: no RGB round trip, which costs about one grey level everywhere and, for a BT.709 clip
    encoded with the BT.601 matrix, shifts the colours (see :class:`sserd_core.media.VideoWriter`).
    """

    yuv: np.ndarray
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int

    @property
    def tags(self) -> tuple[int, int, int, int]:
        return (self.colorspace, self.color_range, self.color_primaries, self.color_trc)

    def to_rgb(self) -> np.ndarray:
        """The frame's RGB, converted as the decoder's frame was (the same swscale call, the same tags):
        bit-identical to the ``rgb`` decoded with these planes (tests/test_media.py checks it)."""
        frame = av.VideoFrame.from_ndarray(self.yuv, format="yuv420p")
        frame.colorspace, frame.color_range = self.colorspace, self.color_range
        return frame.to_ndarray(format="rgb24")


@dataclass
class Frame:
    """One decoded frame: ``index`` in the selected range, ``time`` in seconds from the range start.

    ``planes``: the decoder's own 4:2:0 planes, kept when asked for and when they map 1:1 onto ``rgb``
    (8-bit ``yuv420p`` in limited range, even size, no rotation); None otherwise."""

    index: int
    time: float
    rgb: np.ndarray  # uint8 [H, W, 3], upright
    planes: Optional[Planes] = None

    @property
    def nbytes(self) -> int:
        return self.rgb.nbytes + (self.planes.yuv.nbytes if self.planes is not None else 0)


def _planes_of(frame, rotation: int) -> Optional[Planes]:
    """The frame's planes when an encoder can take them as they are (see :class:`Planes`), else None."""
    if (frame.format.name != "yuv420p" or rotation or frame.width % 2 or frame.height % 2
            or frame.color_range not in (0, 1)):  # unspecified or MPEG (limited) range
        return None
    return Planes(frame.to_ndarray(format="yuv420p"), int(frame.colorspace), int(frame.color_range),
                  int(frame.color_primaries), int(frame.color_trc))


def iter_frames(info: VideoInfo, max_frames: Optional[int] = None, planes: bool = False) -> Iterator[Frame]:
    """Decode the frames of ``info``'s range one by one (upright RGB ``uint8``).

    Seeks to ``info.start`` and stops at ``info.end``; a truncated tail ends the
    iteration with a warning rather than an error, so every decodable frame is used.
    ``planes``: also keep each frame's decoded :class:`Planes` (for an encoder that writes the
    unchanged pixels as decoded), where the format allows it.
    """
    limit = max_frames or info.n_frames
    with _open(info.path) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        t0 = vs.start_time or 0
        if info.start > 0:
            c.seek(int(info.start / vs.time_base) + t0, stream=vs, backward=True)
        i = 0
        damaged: list = []  # decode errors of single packets: skipped, counted, said at the end

        def decoded():
            # packet by packet, so a damaged packet costs its own frames, not the rest of the clip
            for packet in c.demux(vs):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    _no_resources(exc, info.path)
                    damaged.append(exc)
                    continue
                yield from frames

        last_t = -float("inf")
        try:
            for frame in decoded():
                if frame.pts is None:
                    continue
                t = float((frame.pts - t0) * vs.time_base)
                if t < info.start - 1e-6:
                    continue
                if damaged and t <= last_t:  # after a damaged packet a decoder can hand back a stale frame late
                    continue
                last_t = t
                if info.end is not None and t >= info.end - 1e-6:
                    break
                # rows of a decoded frame can be padded in memory: hand every consumer (dlib included) a
                # contiguous array
                rgb = np.ascontiguousarray(_upright(frame.to_ndarray(format="rgb24"), info.rotation))
                yield Frame(i, t - info.start, rgb, _planes_of(frame, info.rotation) if planes else None)
                i += 1
                if i >= limit:
                    break
        except av.error.FFmpegError as exc:
            _no_resources(exc, info.path)  # not a damaged file: the decoder could not allocate
            if i == 0:
                raise MediaError(f"{Path(info.path).name} is corrupt: {_short(exc)}") from exc
            warnings.warn(f"{Path(info.path).name}: decoding stopped after {i} frames ({_short(exc)}); the rest is unreadable.")
        if damaged:
            if i == 0:
                raise MediaError(f"{Path(info.path).name} is corrupt: no frame could be decoded ({_short(damaged[0])}).")
            lost = f"{max(0, info.n_frames - i)} of {info.n_frames} frames" if max_frames is None else "their frames"
            warnings.warn(f"{Path(info.path).name}: {len(damaged)} damaged packet(s) could not be decoded and were "
                          f"skipped ({_short(damaged[0])}): {lost} are missing from the output; decoding went on "
                          "past them.")


def is_still_image(path: str | os.PathLike) -> bool:
    """True for a single still picture (PNG, JPEG, WebP, BMP, TIFF, a one-frame GIF), False for a video."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1)) == 1
    except (UnidentifiedImageError, OSError):
        return False


def read_image(path_or_array) -> np.ndarray:
    """Load an image (path or array) as ``uint8`` RGB ``[H, W, 3]``; raises a readable error otherwise."""
    if isinstance(path_or_array, np.ndarray):
        arr = path_or_array
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.dtype.kind not in "uifb":
            raise MediaError(f"An image array must hold real numbers (uint8 0..255 or float 0..1), got dtype {arr.dtype}.")
        if arr.ndim not in (2, 3) or arr.size == 0 or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
            raise MediaError(f"An image array must be [H, W], [H, W, 3] or [H, W, 4] with pixels; got shape {arr.shape}.")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise MediaError("The image array contains NaN or infinite values.")
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, -1)
        return np.ascontiguousarray(arr[..., :3])
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path_or_array)
    if not p.exists():
        raise MediaError(f"Reference image not found: {p}.")
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            return np.asarray(im).copy()
    except (UnidentifiedImageError, OSError):
        pass
    try:
        probe_video(p)
    except MediaError:
        raise MediaError(f"{p.name} is not an image PIL can read (PNG, JPEG, WebP, ...).") from None
    raise MediaError(f"{p.name} is a video, not an image; give a still image (PNG, JPEG, WebP, ...).")


def picture_of(path) -> np.ndarray:
    """What a picture of ``path`` shows: an image file's pixels, or a video's middle frame — for callers that
    take either on purpose (a reference shown as a thumbnail, an emotion net's reference feature)."""
    return read_image(path) if is_still_image(path) else middle_frame(probe_video(path))


def middle_frame(info: VideoInfo) -> np.ndarray:
    """The middle frame of ``info``'s range (upright RGB ``uint8``)."""
    mid = info.n_frames // 2
    for fr in iter_frames(info):
        if fr.index >= mid:
            return fr.rgb
    raise MediaError(f"No frame of {Path(info.path).name} could be decoded.")


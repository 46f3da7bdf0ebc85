"""Streaming video and audio I/O with PyAV.

Frames are decoded, processed and encoded one at a time: nothing here ever holds a whole
clip in memory. Rotation metadata is applied on decode (frames come out upright, as a
player shows them), frame timestamps are carried through (variable frame rate survives),
and outputs are written to a temporary file beside the target and renamed atomically, so
a failed or interrupted job never leaves a half-written file and never touches its input.

Shapes: frames are ``uint8`` RGB arrays ``[H, W, 3]``; audio waveforms are ``float32``
``[channels, samples]`` in -1..1.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np

from .errors import MediaError, SSERDError

# Audio codecs each output container can carry without re-encoding.
_COPYABLE_AUDIO = {
    ".mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    ".m4v": {"aac", "mp3", "alac", "ac3", "eac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    ".mkv": None,  # anything
    ".webm": {"opus", "vorbis"},
}
_VIDEO_CODEC = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
_AUDIO_CODEC = {".webm": "libopus"}  # everything else re-encodes to AAC

SUPPORTED_OUTPUTS = tuple(_VIDEO_CODEC)


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
        raise MediaError(f"Cannot read {p.name} as a video ({_short(exc)}). Give an MP4/MOV/MKV/WebM file.") from exc


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


@dataclass
class Frame:
    """One decoded frame: ``index`` in the selected range, ``time`` in seconds from the range start."""

    index: int
    time: float
    rgb: np.ndarray  # uint8 [H, W, 3], upright


def iter_frames(info: VideoInfo, max_frames: Optional[int] = None) -> Iterator[Frame]:
    """Decode the frames of ``info``'s range one by one (upright RGB ``uint8``).

    Seeks to ``info.start`` and stops at ``info.end``; a truncated tail ends the
    iteration with a warning rather than an error, so every decodable frame is used.
    """
    limit = max_frames or info.n_frames
    with _open(info.path) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        t0 = vs.start_time or 0
        if info.start > 0:
            c.seek(int(info.start / vs.time_base) + t0, stream=vs, backward=True)
        i = 0
        try:
            for frame in c.decode(vs):
                if frame.pts is None:
                    continue
                t = float((frame.pts - t0) * vs.time_base)
                if t < info.start - 1e-6:
                    continue
                if info.end is not None and t >= info.end - 1e-6:
                    break
                # rows of a decoded frame can be padded in memory: hand every consumer (dlib included) a
                # contiguous array
                rgb = np.ascontiguousarray(_upright(frame.to_ndarray(format="rgb24"), info.rotation))
                yield Frame(i, t - info.start, rgb)
                i += 1
                if i >= limit:
                    break
        except av.error.FFmpegError as exc:
            if i == 0:
                raise MediaError(f"{Path(info.path).name} is corrupt: {_short(exc)}") from exc
            warnings.warn(f"{Path(info.path).name}: decoding stopped after {i} frames ({_short(exc)}); the rest is unreadable.")


def worker_thread_signals() -> None:
    """Called first in every background thread of the project: block SIGINT/SIGTERM/SIGHUP there.

    The kernel hands a process-directed signal to any thread that does not block it; if that is a
    decode, encode or frame-worker thread (or one FFmpeg starts from it, which inherits the mask),
    the main thread would only see it when its current blocking call returns. Blocked here, every
    such signal reaches the main thread at once, where the CLI turns it into a clean stop.
    """
    import signal

    if hasattr(signal, "pthread_sigmask"):
        wanted = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)}
        signal.pthread_sigmask(signal.SIG_BLOCK, wanted)


def prefetch(iterable, depth: int = 4) -> Iterator:
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead (decoding overlaps compute).

    FFmpeg decodes without holding the GIL, so this runs decode in parallel with the
    caller's work. Exceptions are re-raised in the caller; stopping early (break, an
    exception, a cancelled job) stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def run():
        worker_thread_signals()
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    t = threading.Thread(target=run, name="sserd-decode", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


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
    # a video used as reference: take its middle frame
    info = probe_video(p)
    mid = info.n_frames // 2
    for fr in iter_frames(info):
        if fr.index >= mid:
            return fr.rgb
    raise MediaError(f"Cannot read {p.name} as an image or video.")


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
    from .outputs import OutputSet

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


@dataclass
class AudioData:
    """Decoded audio: ``waveform`` float32 ``[channels, samples]`` in -1..1 at ``sample_rate`` Hz."""

    waveform: np.ndarray
    sample_rate: int


def read_audio(path: str | os.PathLike, start: float = 0.0, end: Optional[float] = None,
               stream: int = 0) -> Optional[AudioData]:
    """Decode audio stream ``stream`` (0 = the first) of ``path`` between ``start`` and ``end`` seconds
    (None if there is no such stream)."""
    with _open(path) as c:
        if len(c.streams.audio) <= stream:
            return None
        a = c.streams.audio[stream]
        sr = a.codec_context.sample_rate
        chunks = []
        t0 = a.start_time or 0
        for frame in c.decode(a):
            arr = frame.to_ndarray()
            if frame.format.is_planar:
                arr = arr.reshape(len(frame.layout.channels), -1)
            else:
                arr = arr.reshape(-1, len(frame.layout.channels)).T
            if arr.dtype.kind == "i":
                arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
            t = float((frame.pts - t0) * a.time_base) if frame.pts is not None else None
            chunks.append((t, arr.astype(np.float32)))
    if not chunks:
        return AudioData(np.zeros((1, 0), np.float32), sr)
    wave = np.concatenate([c for _, c in chunks], axis=1)
    first_t = chunks[0][0] or 0.0
    s = max(0, int(round((start - first_t) * sr)))
    e = wave.shape[1] if end is None else max(s, int(round((end - first_t) * sr)))
    return AudioData(np.ascontiguousarray(wave[:, s:e]), sr)


def mux_audio(video_path: str | os.PathLike, audio, output_path: str | os.PathLike, *,
              audio_start: float = 0.0, audio_end: Optional[float] = None, inputs: tuple = ()) -> Path:
    """Write ``output_path`` = the video stream of ``video_path`` (copied, not re-encoded) + ``audio``.

    ``audio`` is a media file path (every audio stream is kept: stream-copied when the
    output container can carry the codec and no trimming is asked for, else re-encoded),
    an :class:`AudioData`, or None (video only, with a warning). The video is cut to the
    audio's length never; the audio is cut to [``audio_start``, ``audio_end``).
    """
    out = Path(output_path)
    ext = out.suffix.lower()
    ain = None
    with atomic_output(out, inputs=tuple(inputs) + (video_path,)) as tmp:
        try:
            with av.open(str(video_path)) as vin, av.open(tmp, mode="w", format=_format_for(ext)) as oc:
                vsrc = vin.streams.video[0]
                vout = oc.add_stream_from_template(vsrc)
                if vsrc.average_rate:
                    vout.codec_context.framerate = vsrc.average_rate  # lets MKV/WebM store the frame rate
                adata = None
                ain = None
                encoded: list = []  # (output stream, AudioData) pairs that are encoded
                if isinstance(audio, AudioData):
                    adata = audio
                elif audio is not None:
                    ain = _open(audio)
                    if not ain.streams.audio:
                        ain.close()
                        ain = None
                        warnings.warn(f"{Path(audio).name} has no audio stream; the output has no audio.")
                copied: list = []  # (source stream, output stream) pairs that are stream-copied
                if ain is not None:
                    allowed = _COPYABLE_AUDIO.get(ext, set())
                    trimmed = audio_start > 0 or audio_end is not None
                    # every audio track is kept: each one stream-copied when the container takes its codec
                    # and nothing is cut, else decoded (and cut) and re-encoded
                    for k, asrc in enumerate(ain.streams.audio):
                        if (allowed is None or asrc.codec_context.name in allowed) and not trimmed:
                            copied.append((asrc, oc.add_stream_from_template(asrc)))
                        else:
                            data = read_audio(audio, audio_start, audio_end, stream=k)
                            if data is not None and data.waveform.shape[1] > 0:
                                encoded.append((_add_audio_encoder(oc, ext, data), data))
                if adata is not None and adata.waveform.shape[1] > 0:
                    encoded.append((_add_audio_encoder(oc, ext, adata), adata))
                # video packets (copied)
                for pkt in vin.demux(vsrc):
                    if pkt.size == 0 or pkt.pts is None:
                        continue
                    _move_packet(pkt, vout)
                    oc.mux(pkt)
                if copied:
                    route = {src.index: dst for src, dst in copied}
                    for pkt in ain.demux(*[src for src, _ in copied]):
                        if pkt.size == 0 or pkt.pts is None:
                            continue
                        _move_packet(pkt, route[pkt.stream.index])
                        oc.mux(pkt)
                for stream, data in encoded:
                    _encode_audio(oc, stream, data)
        finally:
            if ain is not None:
                ain.close()
    return out


def _move_packet(pkt, stream) -> None:
    """Re-home a demuxed packet on an output stream; its timestamps are rescaled when muxed."""
    if pkt.dts is None:  # Matroska stores presentation times only
        pkt.dts = pkt.pts
    tb = pkt.time_base
    pkt.stream = stream
    pkt.time_base = tb


def _format_for(ext: str) -> Optional[str]:
    return {".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".mp4": "mp4", ".m4v": "mp4"}.get(ext)


def _add_audio_encoder(oc, ext: str, adata: AudioData):
    codec = _AUDIO_CODEC.get(ext, "aac")
    sr = adata.sample_rate if codec != "libopus" else 48000
    stream = oc.add_stream(codec, rate=sr)
    stream.layout = "stereo" if adata.waveform.shape[0] >= 2 else "mono"
    stream.bit_rate = 192000
    return stream


def _encode_audio(oc, stream, adata: AudioData) -> None:
    wave = adata.waveform
    if stream.layout.name == "stereo" and wave.shape[0] == 1:
        wave = np.repeat(wave, 2, axis=0)
    wave = np.ascontiguousarray(np.clip(wave[: 2 if stream.layout.name == "stereo" else 1], -1, 1).astype(np.float32))
    layout = stream.layout.name
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=stream.codec_context.sample_rate)
    hop = 1024 * 8
    pts = 0
    for s in range(0, wave.shape[1], hop):
        chunk = wave[:, s:s + hop]
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = adata.sample_rate
        frame.pts = pts
        frame.time_base = Fraction(1, adata.sample_rate)
        pts += chunk.shape[1]
        for rf in resampler.resample(frame):
            for packet in stream.encode(rf):
                oc.mux(packet)
    for rf in resampler.resample(None):
        for packet in stream.encode(rf):
            oc.mux(packet)
    for packet in stream.encode(None):
        oc.mux(packet)


__all__ = [
    "VideoInfo", "Frame", "AudioData", "probe_video", "iter_frames", "read_image", "write_image",
    "atomic_output", "VideoWriter", "read_audio", "mux_audio", "SUPPORTED_OUTPUTS",
]

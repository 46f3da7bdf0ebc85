"""The clip Load Video (SSERD) hands downstream: a range of a file on disk, never re-encoded.

One encode generation on the ComfyUI path: the SSERD nodes decode the *source* file's frames
in the selected range (start / end / frame cap) and Render Face encodes them once. Nothing is
trimmed into a new lossy file on the way.

- :class:`SSERDClip` is a core ``VIDEO`` (a ``VideoInput``) that carries the range as a
  :class:`~sserd_core.media.VideoInfo` (``clip.info``). SSERD nodes read ``clip.info`` and
  stream the range straight from the source. Any other consumer (core Save Video, Get Video
  Components, Mux Audio's stream copy …) uses the ``VIDEO`` API; the first such call writes
  the clip once, with its audio, to ComfyUI's temp folder (:meth:`SSERDClip.materialize`) —
  or, when the clip is the whole file, simply is the file.
- A frame-rate change (``force_fps``) cannot be a range: the resampled frames (source frames
  dropped or repeated, bit-exact) go to a *lossless* intermediate (:func:`sserd_core.media.resample_video`:
  the decoder's own 4:2:0 planes, tagged as the source, or RGB for other formats), so the edit
  is still encoded once from the decoded source pixels, with the source's colour matrix.
- Core ``AUDIO`` from Load Video (SSERD) carries where it came from (:func:`tag_audio`); Mux
  Audio stream-copies that file's audio when the waveform reached it unchanged
  (:func:`source_of`), so the sound of a file-to-file graph stays bit-identical.
"""

from __future__ import annotations

import hashlib
import threading
from fractions import Fraction
from typing import Optional

import numpy as np
from comfy_api.latest import InputImpl
from comfy_api.latest._input import VideoInput
from comfy_api.util import VideoCodec, VideoContainer

from sserd_core import media, pipeline

from ._common import temp_path, video_path

#: key of the provenance record in a core AUDIO dict (other nodes ignore unknown keys)
AUDIO_SOURCE_KEY = "sserd_source"


class SSERDClip(VideoInput):
    """A ``VIDEO`` that is the range ``info`` of a file (see the module docstring).

    ``audio`` is ``(path, start, end)``: the file whose audio belongs to the clip and its
    range in seconds (``end`` None = to the end), or None when the clip has no audio.
    ``whole``: the clip is exactly ``info.path`` (no range, no resampling): the ``VIDEO``
    API then reads that file as it is and nothing is ever written.

    A composition, not a file video: it implements ComfyUI's ``VideoInput`` interface (the
    methods every ``VIDEO`` has) by handing each call to a ``VideoFromFile`` of :meth:`materialize`'s
    file. A method a later ComfyUI adds to ``VideoInput`` with a default implementation works
    through these. SSERD nodes never call them: they read ``info``.
    """

    def __init__(self, info: media.VideoInfo, audio: Optional[tuple], whole: bool):
        self.info = info
        self.audio = audio
        self.whole = whole
        self._file: Optional[str] = info.path if whole else None
        self._lock = threading.Lock()

    def materialize(self) -> str:
        """The clip as a file any node can read (H.264 + the source audio cut to the range), written once."""
        with self._lock:
            if self._file is None:
                out = temp_path("sserd_clip")
                pipeline.write_clip(self.info, out, self.audio)
                self._file = str(out)
            return self._file

    def as_file_video(self) -> InputImpl.VideoFromFile:
        """The clip as ComfyUI's own file video (:meth:`materialize`'s file)."""
        return InputImpl.VideoFromFile(self.materialize())

    # the VideoInput interface, each through the clip's file
    def get_components(self):
        return self.as_file_video().get_components()

    def save_to(self, path, format=VideoContainer.AUTO, codec=VideoCodec.AUTO, metadata=None):
        return self.as_file_video().save_to(path, format=format, codec=codec, metadata=metadata)

    def get_stream_source(self):
        return self.materialize()

    def get_dimensions(self) -> tuple[int, int]:
        return int(self.info.width), int(self.info.height)  # the range's frames are the file's: nothing to write

    def get_duration(self) -> float:
        return self.as_file_video().get_duration()

    def get_container_format(self) -> str:
        return self.as_file_video().get_container_format()


def load_clip(path: str, start: float = 0.0, end: Optional[float] = None, frame_cap: int = 0, fps: float = 0.0,
              progress=None) -> SSERDClip:
    """The clip of ``path`` in [``start``, ``end``) seconds, at most ``frame_cap`` frames, at ``fps`` (0 = the file's).

    Nothing is encoded for a range; only a frame-rate change writes the resampled frames, losslessly.
    """
    info = pipeline.load_video(path, start=start or None, end=end, max_frames=frame_cap or None)
    capped = bool(frame_cap) and info.n_frames >= frame_cap
    a_end = info.end
    if capped:  # the cap, not `end`, closes the clip: its audio ends with its last frame
        # (n_frames / fps, not info.duration: with B-frames the probe's first packets in decode order
        # can reach past the capped frames)
        last = info.start + info.n_frames / info.fps_float
        a_end = last if a_end is None else min(a_end, last)
    source_fps = info.fps_float
    if fps > 0 and abs(fps - source_fps) > 1e-3:
        rate = Fraction(fps).limit_denominator(1001)
        lossless = temp_path("sserd_clip_resampled", ".mkv")
        duration = media.resample_video(info, rate, lossless, progress)
        audio = (path, info.start, info.start + duration) if info.has_audio else None
        return SSERDClip(pipeline.load_video(lossless), audio, whole=False)
    whole = not info.start and a_end is None
    audio = (path, info.start, a_end) if info.has_audio else None
    return SSERDClip(info, audio, whole=whole)


def clip_info(video) -> media.VideoInfo:
    """The frames an SSERD node should read: the clip's range of its source, or the whole file of any other VIDEO."""
    if isinstance(video, SSERDClip):
        return video.info
    return pipeline.load_video(video_path(video))


# ----------------------------------------------------------------------------------------- audio

def _digest(waveform, sample_rate: int) -> str:
    arr = np.ascontiguousarray(waveform.detach().to("cpu").numpy() if hasattr(waveform, "detach") else waveform)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{arr.dtype}{arr.shape}{int(sample_rate)}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def tag_audio(audio: Optional[dict], path: str, start: float, end: Optional[float]) -> Optional[dict]:
    """Record in a core AUDIO dict that it is ``path``'s audio in [``start``, ``end``) — with a digest of
    the waveform, so a node that changes the samples in place cannot pass for the source."""
    if audio is None:
        return None
    audio[AUDIO_SOURCE_KEY] = {"path": str(path), "start": float(start), "end": None if end is None else float(end),
                               "digest": _digest(audio["waveform"], audio["sample_rate"])}
    return audio


def source_of(audio: Optional[dict]) -> Optional[tuple]:
    """``(path, start, end)`` when ``audio`` is still exactly the tagged file's audio, else None."""
    if not isinstance(audio, dict) or not isinstance(audio.get(AUDIO_SOURCE_KEY), dict):
        return None
    src = audio[AUDIO_SOURCE_KEY]
    try:
        if _digest(audio["waveform"], audio["sample_rate"]) != src["digest"]:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return src["path"], src["start"], src["end"]

"""Streaming video and audio I/O with PyAV.

Frames are decoded, processed and encoded one at a time: nothing here ever holds a whole
clip in memory. Rotation metadata is applied on decode (frames come out upright, as a
player shows them), frame timestamps are carried through (variable frame rate survives),
and outputs are written to a temporary file beside the target and renamed atomically, so
a failed or interrupted job never leaves a half-written file and never touches its input.

Shapes: frames are ``uint8`` RGB arrays ``[H, W, 3]``; audio waveforms are ``float32``
``[channels, samples]`` in -1..1.

The package is split along its seams: :mod:`.read` (probe, decode, images), :mod:`.write`
(staged outputs, the encoder), :mod:`.audio` (decode, mux) and :mod:`.threads` (the background
threads' signal mask, decode-ahead). Everything is used as ``media.<name>``.
"""

from .audio import AudioData, mux_audio, read_audio
from .patch import Patch
from .read import Frame, Planes, VideoInfo, is_still_image, iter_frames, middle_frame, picture_of, probe_video, read_image
from .resample import resample_video
from .threads import prefetch, worker_thread_signals
from .write import SUPPORTED_OUTPUTS, VideoWriter, atomic_output, write_image

__all__ = ["AudioData", "Frame", "Patch", "Planes", "SUPPORTED_OUTPUTS", "VideoInfo", "VideoWriter", "atomic_output", "is_still_image",
           "iter_frames", "middle_frame", "mux_audio", "picture_of", "prefetch", "probe_video", "read_audio", "read_image", "resample_video",
           "worker_thread_signals", "write_image"]

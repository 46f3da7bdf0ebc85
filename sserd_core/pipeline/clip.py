"""A clip's range written as a file of its own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .. import media
from ..outputs import OutputSet
from .stages import mux_audio


def write_clip(video: media.VideoInfo, output_path: Union[str, os.PathLike], audio: Optional[tuple] = None, *,
               size: Optional[tuple[int, int]] = None) -> Path:
    """Write ``video``'s range as a file of its own: its frames encoded as every output is (scaled to
    ``size`` = (w, h) with area interpolation, if given) and ``audio`` = ``(path, start, end)`` muxed in
    (stream-copied when possible; None: video only). All or nothing, like every output of the project."""
    import cv2

    w, h = size if size is not None else (video.width, video.height)
    with OutputSet(inputs=(video.path,) + ((audio[0],) if audio else ())) as outs:
        silent = outs.scratch("video.mp4")
        with media.VideoWriter(str(silent), w, h, video.fps) as writer:
            for fr in media.iter_frames(video, planes=size is None):
                if size is None:
                    writer.write(fr.rgb, fr.time, source=fr)  # the decoded planes, as they are
                else:
                    writer.write(cv2.resize(fr.rgb, (w, h), interpolation=cv2.INTER_AREA), fr.time)
        path, start, end = audio if audio is not None else (None, 0.0, None)
        mux_audio(silent, path, outs.file(output_path), audio_start=start, audio_end=end,
                  inputs=(str(video.path),) + ((str(path),) if path else ()))
    return Path(output_path)

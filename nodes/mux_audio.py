"""Mux Audio: put a core ``AUDIO`` track (from any node) onto a video."""

from __future__ import annotations

import logging

from comfy_api.latest import io

from sserd_core import pipeline

from ._clip import source_of
from ._common import CATEGORY, audio_from_core, file_video, temp_path, video_path

log = logging.getLogger("sserd")


class MuxAudio(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SSERD_MuxAudio",
            display_name="Mux Audio",
            category=CATEGORY,
            description="Combine a video with an audio track: the video stream is copied (not re-encoded). Audio "
                        "straight from Load Video (SSERD) is copied from the source file, bit for bit (cut to the "
                        "clip's range if it has one); audio from any other node is encoded to AAC.",
            inputs=[
                io.Video.Input("video", tooltip="The video to add sound to (e.g. Render Face's output)."),
                io.Audio.Input("audio", optional=True,
                               tooltip="The audio track, e.g. Load Video (SSERD)'s audio or any core audio node. "
                                       "Not connected / empty: the video is passed through without sound."),
            ],
            outputs=[
                io.Video.Output("video_with_audio", display_name="video",
                                tooltip="The video with the audio track (file-backed MP4)."),
            ],
        )

    @classmethod
    def execute(cls, video, audio=None) -> io.NodeOutput:
        src = video_path(video)
        out = temp_path("sserd_with_audio")
        source = source_of(audio)
        if source is not None:
            # the samples are still the file's own: take its audio stream (stream-copied when nothing is cut)
            path, start, end = source
            pipeline.mux_audio(src, path, out, audio_start=start, audio_end=end, inputs=(path,))
            return io.NodeOutput(file_video(out))
        data = audio_from_core(audio)
        if data is None or data.waveform.shape[-1] == 0:
            log.warning("SSERD Mux Audio: no audio given; the video is passed through without sound.")
        pipeline.mux_audio(src, data if data is not None and data.waveform.shape[-1] else None, out)
        return io.NodeOutput(file_video(out))

"""Mux Audio: put a core ``AUDIO`` track (from any node) onto a video."""

from __future__ import annotations

import logging

from comfy_api.latest import io

from sserd_core import pipeline

from ._common import CATEGORY, audio_from_core, file_video, temp_path, video_path

log = logging.getLogger("sserd")


class MuxAudio(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SSERD_MuxAudio",
            display_name="Mux Audio",
            category=CATEGORY,
            description="Combine a video with an audio track: the video stream is copied (not re-encoded), the "
                        "audio is encoded to AAC (Opus for WebM). Works with AUDIO from any node.",
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
        data = audio_from_core(audio)
        if data is None or data.waveform.shape[-1] == 0:
            log.warning("SSERD Mux Audio: no audio given; the video is passed through without sound.")
        out = temp_path("sserd_with_audio")
        pipeline.mux_audio(src, data if data is not None and data.waveform.shape[-1] else None, out)
        return io.NodeOutput(file_video(out))

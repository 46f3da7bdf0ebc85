"""Disentangle Content: track the face and split its expression into speech content and emotion."""

from __future__ import annotations

import numpy as np
from comfy_api.latest import io

from sserd_core import pipeline
from sserd_core.emotion import EMOTIONS

from ._clip import clip_info
from ._common import CATEGORY, ComfyProgress, ContentType


class DisentangleContent(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SSERD_DisentangleContent",
            display_name="Disentangle Content",
            category=CATEGORY,
            description="Track one face through the video and split each frame's expression into speech content "
                        "(jaw, lip opening — always kept) and emotion (brows, lids, cheeks, lip corners — what "
                        "Render Face changes). Also estimates the person's neutral face.",
            inputs=[
                io.Video.Input("video", tooltip="The talking-face video to edit (any VIDEO: SSERD or core Load Video)."),
                io.Int.Input("face_index", default=pipeline.EditOptions.face_index, min=0, max=16,
                             tooltip="Which face to follow when several are visible: 0 = the largest, 1 = the "
                                     "next largest, ..."),
            ],
            outputs=[
                ContentType.Output("content", display_name="content",
                                   tooltip="The content track: per-frame face landmarks, speech content and the "
                                           "emotion the source shows, plus the person's neutral face."),
            ],
        )

    @classmethod
    def execute(cls, video, face_index=pipeline.EditOptions.face_index) -> io.NodeOutput:
        info = clip_info(video)  # Load Video (SSERD)'s range of its source file, or any VIDEO's file
        content = pipeline.disentangle_content(info, face_index=face_index, progress=ComfyProgress(info.n_frames))
        found = np.asarray(content.found, bool)
        shown = np.nanmean(content.source_emotion[found], 0) if found.any() else np.zeros(len(EMOTIONS))
        summary = {"frames": int(content.n_frames), "face_frames": int(found.sum()),
                   "labels": list(EMOTIONS), "values": [round(float(v), 4) for v in shown],
                   "title": "source emotion (mean)"}
        return io.NodeOutput(content, ui={"sserd_content": [summary]})
